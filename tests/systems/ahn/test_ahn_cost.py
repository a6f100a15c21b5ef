"""benchmarks/ahn_cost.py: the three decoders are what they claim (chunked full-attention prefill, sinks + SWA
decoding without the memory), the quick run's cache bytes are exact (AHN flat, full attention linear), and the
analytic costs land on Qwen2.5-3B's published sizes and the paper's cache figures. Timings are not asserted."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from reasonlab.errors import UserError
from reasonlab.systems.ahn.model import AHNStudent, window_mask
from reasonlab.train.tinylm import TinyLMConfig, TinyTransformer

BENCHMARK = Path(__file__).resolve().parents[3] / "benchmarks" / "ahn_cost.py"
LAYERS, HEADS, D_MODEL, SINKS, WINDOW = 2, 2, 32, 4, 60
HEAD_DIM, BUDGET = D_MODEL // HEADS, SINKS + WINDOW


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ahn_cost", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    sys.modules["ahn_cost"] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("ahn_cost", None)


@pytest.fixture(scope="module")
def quick(bench, tmp_path_factory) -> tuple[dict, Path, Path]:
    out = tmp_path_factory.mktemp("ahn-cost")
    results = bench.main(["--quick", "--layers", str(LAYERS), "--heads", str(HEADS), "--d-model", str(D_MODEL),
                          "--vocab", "40", "--sinks", str(SINKS), "--window", str(WINDOW),
                          "--json", str(out / "cost.json"), "--plot", str(out / "cost.png")])
    return results, out / "cost.json", out / "cost.png"


def tiny_base(seed: int = 0) -> TinyTransformer:
    torch.manual_seed(seed)
    return TinyTransformer(TinyLMConfig(vocab_size=40, n_layer=2, n_head=2, d_model=32, context_length=64)).eval()


def causal_logits(model: TinyTransformer, idx: torch.Tensor) -> torch.Tensor:
    L = idx.shape[1]
    return model(idx, torch.arange(L)[None], torch.ones(L, L, dtype=torch.bool).tril()[None, None])


def test_chunked_full_attention_prefill_then_decode_equals_one_causal_forward(bench):
    base = tiny_base()
    sequence = torch.randint(0, 40, (1, 40), generator=torch.Generator().manual_seed(3))
    decoder = bench.FullAttentionDecoder(base, sequence, capacity=40, chunk=6)  # 23 = 6 + 6 + 6 + 5
    decoder.advance(23)
    with torch.no_grad():
        expected = causal_logits(base, sequence[:, :26])
        assert torch.allclose(decoder.step(23), expected[:, 23], atol=1e-5)
        decoder.step(24)  # a timed step writes past `filled`; advancing again overwrites it with the prompt
        decoder.advance(26)
        assert torch.allclose(decoder.step(26 - 1), expected[:, 25], atol=1e-5)
    assert decoder.cache_bytes() == 2 * 2 * 2 * 16 * 26 * 4


def test_decoding_without_the_memory_is_exactly_sinks_and_swa(bench):
    args = argparse.Namespace(seed=0, warmup=0, steps=0, vocab=40, layers=2, d_model=32, heads=2, kind="gdn",
                              sinks=2, window=5, prefill_chunk=4)
    decoders = bench.build_decoders(args, [20, 24])
    swa, ahn = decoders["swa"], decoders["ahn"]
    reference = AHNStudent(decoders["base"], "gdn", sinks=2, window=5).eval()
    idx = swa.sequence[:, :24]
    with torch.no_grad():
        expected = reference(idx, use_memory=False)[0, 20:24]
        logits = torch.cat([swa.student.step(idx[:, t], swa.cache)[0] for t in range(20, 24)])
        assert torch.allclose(logits, expected, atol=1e-5)
        # the AHN decoder's memory has non-zero outputs, so it differs from sinks + SWA
        assert not torch.allclose(ahn.student.step(idx[:, 20], ahn.cache)[0][0], expected[0], atol=1e-4)
    assert swa.cache.position == 24 and all(layer.state is None for layer in swa.cache.layers)


def test_timed_student_steps_leave_the_cache_at_its_context(bench):
    args = argparse.Namespace(seed=0, warmup=2, steps=3, vocab=40, layers=1, d_model=32, heads=2, kind="deltanet",
                              sinks=2, window=5, prefill_chunk=4)
    decoder = bench.build_decoders(args, [12, 16])["ahn"]
    before = [layer.state.clone() for layer in decoder.cache.layers]
    assert len(decoder.time_steps(args.warmup, args.steps)) == 3
    assert decoder.cache.position == 12
    assert all(torch.equal(layer.state, b) for layer, b in zip(decoder.cache.layers, before, strict=True))


def test_quick_run_cache_bytes_are_exact_ahn_flat_and_full_linear(quick):
    results, json_path, png_path = quick
    assert results["contexts"] == [1024, 2048]
    kv_per_token = 2 * LAYERS * HEADS * HEAD_DIM * 4  # K and V, float32
    by_context = results["by_context"]
    for length in (1024, 2048):
        row = by_context[length]
        assert set(row) == {"full", "swa", "ahn"}
        assert row["full"]["cache_bytes"] == kv_per_token * length
        assert row["swa"]["cache_bytes"] == kv_per_token * BUDGET
        # AHN: sink + window K/V, the write gates of the window tokens (beta and decay for GDN), the dh x dh states
        gates, state = LAYERS * HEADS * BUDGET * 2 * 4, LAYERS * HEADS * HEAD_DIM**2 * 4
        assert row["ahn"]["cache_bytes"] == kv_per_token * BUDGET + gates + state
        assert row["ahn"]["cache_bytes"] - row["ahn"]["analytic_cache_bytes"] == row["ahn"]["gate_bytes"] == gates
        for method in ("full", "swa"):
            assert row[method]["cache_bytes"] == row[method]["analytic_cache_bytes"]
        for cell in row.values():
            assert len(cell["round_ms"]) == 2 and cell["ms_per_token"] > 0
    assert results["ratios"]["full"]["cache_bytes"] == 2.0
    assert results["ratios"]["ahn"]["cache_bytes"] == results["ratios"]["swa"]["cache_bytes"] == 1.0
    assert results["ratios"]["ahn"]["analytic_decode_flops"] == 1.0
    assert results["ratios"]["full"]["analytic_decode_flops"] > 1.5
    assert results["ahn_flat"] == (results["ratios"]["ahn"]["ms_per_token"] <= 1.2)
    saved = json.loads(json_path.read_text())
    assert saved["by_context"]["2048"]["full"]["cache_bytes"] == kv_per_token * 2048
    assert saved["settings"]["steps"] == 16 and saved["settings"]["repeats"] == 2
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_prints_the_table_the_ratios_and_the_paper_comparison(bench, capsys):
    bench.main(["--contexts", "96", "80", "--layers", "1", "--heads", "2", "--d-model", "16", "--vocab", "20",
                "--sinks", "2", "--window", "30", "--steps", "2", "--repeats", "1"])
    out = capsys.readouterr().out
    assert "| context | method | cache KiB | ms/token | analytic MFLOP/token |" in out
    assert "| 80 | full | 10.0 |" in out and "| 96 | full | 12.0 |" in out  # 2 x 16 x 4 bytes per token
    assert "| method | 96/80: ms/token | cache | analytic FLOPs/token |" in out
    assert "| full | " in out and "x | 1.20x |" in out  # full attention's cache grows 96/80
    assert "| cache, bf16 | 4.72 -> 1.23 GB | -74.0% | 9.44 -> 2.45 GB | -74.0% |" in out


def test_attended_pairs_counts_the_models_window_mask(bench):
    for length in (3, 7, 8, 30):
        mask = window_mask(length, sinks=2, window=6)
        assert bench.attended_pairs(length, 8) == int(mask.sum())
        assert bench.attended_pairs(length, None) == length * (length + 1) // 2


def test_parameter_count_matches_the_modules(bench):
    config = TinyLMConfig(vocab_size=40, n_layer=3, n_head=4, d_model=48)
    assert bench.parameter_count(bench.tiny_architecture(config)) == sum(
        p.numel() for p in TinyTransformer(config).parameters())
    qwen = bench.QWEN25_3B
    total = bench.parameter_count(qwen)
    assert round(total / 1e9, 2) == 3.09 and round((total - qwen.vocab * qwen.hidden) / 1e9, 2) == 2.77


def test_qwen_3b_analytic_cost_at_128k(bench):
    qwen = bench.QWEN25_3B
    for length in (128_000, 131_072):
        cost = bench.analytic_cost(qwen, length, 128, 32_640, "gdn", bytes_per_value=2)
        assert cost["full"]["cache_bytes"] == 2 * 36 * 2 * 128 * length * 2
        assert cost["ahn"]["cache_bytes"] == 2 * 36 * 2 * 128 * 32_768 * 2 + 36 * 16 * 128 * 128 * 2
        assert cost["ahn"]["prefill_flops"] == cost["swa"]["prefill_flops"] + cost["ahn"]["memory_flops"]
        assert cost["ahn"]["prefill_flops"] < cost["full"]["prefill_flops"]
    paper = bench.paper_comparison()
    fp32, bf16 = paper["ours_fp32"], paper["ours_bf16"]
    # the paper's 9.44 -> 2.45 GB (-74.0%) and SWA's 25.6% are K/V at 4 bytes over 128,000 tokens
    assert round(fp32["full"]["cache_bytes"] / 1e9, 2) == 9.44 and round(fp32["ahn"]["cache_bytes"] / 1e9, 2) == 2.45
    assert round(bf16["cache_change"], 3) == -0.740 and round(bf16["swa_cache_ratio"], 3) == 0.256
    assert round(bf16["params_ahn"] / 1e9, 2) == 3.10
    assert bf16["params_ahn"] - bf16["params_full"] == 36 * (3 * 2048 * 16 + 16 * 128 * 128)
    assert -0.42 < bf16["flops_change"] < -0.40
    assert abs(bf16["flops_change_counting_embedding"] - -0.405) < 0.005


def test_contexts_within_the_budget_are_refused(bench):
    with pytest.raises(UserError, match="within the budget"):
        bench.main(["--contexts", "64", "128", "--window", "100"])
    with pytest.raises(UserError, match="at least two"):
        bench.main(["--contexts", "1024", "1024"])
    with pytest.raises(UserError, match="--steps"):
        bench.main(["--steps", "-1", "--contexts", "1024", "2048"])
