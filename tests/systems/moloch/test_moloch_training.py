"""Moloch's rounds end to end on a real (tiny, random) transformers agent: the run's files, the base agent's
samples shared by the conditions of an experiment, a crashed run that resumes to the uninterrupted result, the
LoRA adapter saved and reloaded, a run evaluated again; and, with fakes, the anchors, a round's statistics, the
selection report and the experiment's summary and headline.

The agent is a 2-layer random Llama over a word-level vocabulary: the prompt ends with the opening tag
`<sales_pitch>` (agent.prefill), so whatever words it samples form a pitch, some with numbers ("12", "300")."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("peft")

from reasonlab.errors import UserError
from reasonlab.llm.base import Generation, SamplingParams
from reasonlab.llm.hf import HFPolicy
from reasonlab.runs import Run, read_records
from reasonlab.systems.moloch import training
from reasonlab.systems.moloch.anchors import Anchor
from reasonlab.systems.moloch.arenas import fresh_anchors, make_anchors, save_anchors, split_anchors
from reasonlab.systems.moloch.audience import LLMAudience, MarketAudience
from reasonlab.systems.moloch.config import (
    PRESETS,
    AgentConfig,
    AudienceConfig,
    DataConfig,
    EvalConfig,
    ExperimentConfig,
    SimulateConfig,
    TrainConfig,
)
from reasonlab.systems.moloch.datasets import Contest
from reasonlab.systems.moloch.experiment import (
    experiment_headline,
    selection,
    selection_headline,
    summarize_experiment,
)
from reasonlab.systems.moloch.probes import fabrication, win_rate
from reasonlab.systems.moloch.rounds import agent_prompts, sample_messages
from reasonlab.systems.moloch.training import (
    base_samples,
    build_anchors,
    build_audience,
    evaluate_run,
    prompt_examples,
    round_stats,
    simulate,
    train,
)
from reasonlab.train import sft
from reasonlab.train.sft import Example, LoRAConfig, SFTConfig
from tiny_hf import tiny_llama, word_tokenizer

WORDS = ["<pad>", "<eos>", "?", "<sales_pitch>", "</sales_pitch>", "12", "300", "buy", "this", "great",
         "charger", "light", "power", "bank", "the", "a"]
NUM_TRAIN, NUM_TEST, SEED = 5, 3, 0
RUN_NAME = f"sales-market-rft-s{SEED}"
LORA = LoRAConfig(r=2, alpha=4, dropout=0.05)
EXAMPLES = [Example("buy this charger <sales_pitch>", " 12 300 great </sales_pitch>"),
            Example("a power bank <sales_pitch>", " light 300 </sales_pitch>")]


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Tiny models: one torch thread per test."""


def tiny_policy() -> HFPolicy:
    """The agent: a random Llama (torch seed 0, so every call gives the same weights) over WORDS; its position
    limit raised so the ~200-word agent prompt fits (rotary positions have no table to outgrow)."""
    model = tiny_llama(len(WORDS))
    model.config.max_position_embeddings = 1024
    return HFPolicy(model, word_tokenizer(WORDS, unknown="?"), name="tiny", device="cpu")


def train_config(out: Path, **update) -> TrainConfig:
    config = TrainConfig(
        llm="hf:tiny",  # never loaded: the policy is passed in (a load would fail at once, not fetch Gemma)
        rounds=2, seed=SEED, out=str(out),
        data=DataConfig(num_train=NUM_TRAIN, num_test=NUM_TEST),
        agent=AgentConfig(max_tokens=8, batch_size=4),
        audience=AudienceConfig(kind="market", personas=5),
        sft=SFTConfig(backend="plain", max_steps=2, batch_size=4, learning_rate=1e-2, lora=LORA, bf16=False,
                      progress=False),
        train_cut_winners=True,  # the random agent never closes its tag in 8 tokens
    )
    return config.model_copy(update=update)


def count_generate(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Record (prompts, n) of every HFPolicy.generate call, the adapter-disabled reference's included."""
    calls: list[tuple[int, int]] = []
    real = HFPolicy.generate

    def generate(self, prompts, params):  # type: ignore[no-untyped-def]
        calls.append((len(prompts), params.n))
        return real(self, prompts, params)

    monkeypatch.setattr(HFPolicy, "generate", generate)
    return calls


def prompts_sampled(calls: list[tuple[int, int]], n: int) -> int:
    return sum(prompts for prompts, samples in calls if samples == n)


def completions_of(log: Path) -> list[list[str]]:
    return [record["completions"] for record in read_records(log)]


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def count_sft(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Record (seed, examples) of every sft.train call (the round's schedule seed is SEED * 1000 + round)."""
    calls: list[tuple[int, int]] = []
    real = sft.train

    def train_and_count(config, policy, examples, **kwargs):  # type: ignore[no-untyped-def]
        calls.append((config.seed, len(examples)))
        return real(config, policy, examples, **kwargs)

    monkeypatch.setattr(sft, "train", train_and_count)
    return calls


@dataclass
class FinishedRun:
    out: Path
    dir: Path
    calls: list[tuple[int, int]]
    trained: list[tuple[int, int]]


@pytest.fixture(scope="module")
def market_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FinishedRun]:
    """One uninterrupted 2-round RFT run under the market, shared by the tests that read or extend it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("moloch")
    with pytest.MonkeyPatch.context() as patch:
        calls, trained = count_generate(patch), count_sft(patch)
        run_dir = train(train_config(out), policy=tiny_policy())
    torch.set_num_threads(threads)
    yield FinishedRun(out, run_dir, calls, trained)


# train: the run's files, and the base agent's samples shared across methods


def test_a_round_whose_winners_were_all_cut_stops_with_one_line(tmp_path: Path):
    # one token a completion: a word (a cut message) or the closing tag alone (no message), so no full winner
    config = train_config(tmp_path, rounds=1, train_cut_winners=False, agent=AgentConfig(max_tokens=1, batch_size=4))
    with pytest.raises(UserError) as err:
        train(config, policy=tiny_policy())
    assert "winners cut before their closing tag" in one_line(err) and "agent.max_tokens" in one_line(err)
    contests = read_records(tmp_path / RUN_NAME / "round1" / "contests.jsonl")  # the round's votes are kept
    assert len(contests) == NUM_TRAIN and not any(c["completions"][c["winner"]].endswith("</sales_pitch>")
                                                  for c in contests if c["winner"] is not None)


def test_train_writes_every_round_and_a_summary_of_win_rates(market_run: FinishedRun):
    run_dir = market_run.dir
    assert run_dir == market_run.out / RUN_NAME
    for k in (1, 2):
        folder = run_dir / f"round{k}"
        assert (folder / "adapter" / "adapter_model.safetensors").is_file()
        assert len(completions_of(folder / "contests.jsonl")) == NUM_TRAIN
        assert json.loads((folder / "result.json").read_text())["round"] == k
    summary = Run.open(run_dir).summary()
    assert (summary["method"], summary["audience"], summary["seed"]) == ("rft", "market", SEED)
    assert [r["round"] for r in summary["rounds"]] == [1, 2]
    for result in summary["rounds"]:
        for audience in ("train_personas", "held_out"):
            rate = result[f"win_rate_{audience}"]
            assert 0 <= rate["mean"] <= 1 and 0 < rate["n"] <= NUM_TEST
            assert rate["n"] + rate["excluded"] == NUM_TEST == len(result[f"shares_{audience}"])
        train_stats = result["train"]
        assert train_stats["contests"] == NUM_TRAIN
        assert train_stats["decided"] + train_stats["ties"] + train_stats["missing_message"] == NUM_TRAIN
        assert len(result["train_losses"]) == 2  # sft.max_steps
        assert result["tuned"]["messages"] + result["tuned"]["missing"] == NUM_TEST
    # RFT trains on each round's winners, each repeated 3 times (with train_cut_winners, the cut ones too; they are
    # still counted)
    for r in summary["rounds"]:
        logged = read_records(market_run.dir / f"round{r['round']}" / "contests.jsonl")
        cut = [c for c in logged if c["winner"] is not None and "</sales_pitch>" not in c["completions"][c["winner"]]]
        assert r["train"]["cut_winners"] == len(cut)
    assert sum(r["train"]["cut_winners"] for r in summary["rounds"]) > 0
    assert market_run.trained == [(SEED * 1000 + r["round"], 3 * r["train"]["decided"]) for r in summary["rounds"]]
    # pairs of both rounds (round 1 from the base agent) and one test message per anchor: the base agent's
    # and each round's tuned one
    assert prompts_sampled(market_run.calls, 2) == 2 * NUM_TRAIN
    assert prompts_sampled(market_run.calls, 1) == 3 * NUM_TEST
    cached = sorted(p.name.split("-")[0] for p in (market_run.out / "_samples").glob("*.jsonl"))
    assert cached == ["round1", "test"]


def test_a_second_method_with_the_same_seed_reuses_the_base_agents_samples(market_run: FinishedRun, monkeypatch):
    calls, trained = count_generate(monkeypatch), count_sft(monkeypatch)
    tfb_dir = train(train_config(market_run.out, method="tfb"), policy=tiny_policy())
    assert tfb_dir.name == f"sales-market-tfb-s{SEED}"
    rft_round1 = completions_of(market_run.dir / "round1" / "contests.jsonl")
    assert completions_of(tfb_dir / "round1" / "contests.jsonl") == rft_round1
    assert any(text for pair in rft_round1 for text in pair)
    # only round 2's pairs (from the TFB-tuned agent) and the two rounds' tuned test messages are sampled
    assert prompts_sampled(calls, 2) == NUM_TRAIN
    assert prompts_sampled(calls, 1) == 2 * NUM_TEST
    assert len(list((market_run.out / "_samples").glob("*.jsonl"))) == 2
    tfb = Run.open(tfb_dir).summary()["rounds"][0]
    rft = Run.open(market_run.dir).summary()["rounds"][0]
    assert tfb["base"] == rft["base"]  # the same base messages on the test anchors
    assert trained[0][1] > 3 * tfb["train"]["decided"] == 3 * rft["train"]["decided"]  # + the voters' thoughts


class Crash(Exception):
    pass


def crash_on_second_call(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> None:
    """Make `module.name` raise on its second call (round 2's), as a killed process would stop there."""
    real, calls = getattr(module, name), []

    def crash(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(name)
        if len(calls) == 2:
            raise Crash(f"killed in round 2's {name}")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, crash)


def saved_files(run_dir: Path) -> dict[Path, tuple[bytes, int]]:
    """Every round's adapter weights and contest log: bytes and modification time."""
    paths = [*run_dir.glob("round*/adapter/adapter_model.safetensors"), *run_dir.glob("round*/contests.jsonl")]
    return {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in paths}


@pytest.mark.parametrize("crash_in", ["fine-tuning", "evaluation"])
def test_a_run_that_crashed_in_round_2_resumes_to_the_uninterrupted_result(market_run, tmp_path, monkeypatch,
                                                                          crash_in):
    """Killed in round 2's fine-tuning (its contests logged, no adapter) or in its evaluation (adapter saved,
    no result): the resumed run trains only what was not saved, replays no contest, and ends where an
    uninterrupted run with the same config ends."""
    if crash_in == "fine-tuning":
        crash_on_second_call(monkeypatch, sft, "train")
    else:
        crash_on_second_call(monkeypatch, training, "evaluate_round")
    with pytest.raises(Crash):
        train(train_config(tmp_path), policy=tiny_policy())
    run_dir = tmp_path / RUN_NAME
    assert not (run_dir / "round2" / "result.json").exists() and not Run.open(run_dir).summary_path.exists()
    saved = saved_files(run_dir)
    assert len(saved) == (3 if crash_in == "fine-tuning" else 4)  # both logs; round 1's adapter (and round 2's)
    assert (run_dir / "round2" / "contests.jsonl").read_bytes().count(b"\n") == NUM_TRAIN

    monkeypatch.undo()
    calls, trained = count_generate(monkeypatch), count_sft(monkeypatch)
    assert train(train_config(tmp_path, resume=True), policy=tiny_policy()) == run_dir
    assert [seed for seed, _ in trained] == ([SEED * 1000 + 2] if crash_in == "fine-tuning" else [])
    assert {path: saved_files(run_dir)[path] for path in saved} == saved  # nothing saved was written again
    assert prompts_sampled(calls, 2) == 0  # no contest replayed
    assert prompts_sampled(calls, 1) == NUM_TEST  # round 2's tuned test messages; the base ones are cached
    resumed = Run.open(run_dir).summary()["rounds"]
    uninterrupted = Run.open(market_run.dir).summary()["rounds"]
    for mine, theirs in zip(resumed, uninterrupted, strict=True):
        for key in ("win_rate_train_personas", "win_rate_held_out", "tuned", "base", "train"):
            assert mine[key] == theirs[key], key
    assert resumed == uninterrupted  # a reloaded adapter brings its round's losses (train_losses.json)


def test_more_rounds_extend_a_finished_run_to_the_uninterrupted_result(market_run, tmp_path, monkeypatch):
    """A finished 2-round run given rounds=3 keeps its rounds, trains only the third from round 2's adapter, records
    its new round count, and ends where a 3-round run trained in one go ends; fewer rounds than it finished is a
    one-line error."""
    shutil.copytree(market_run.out, tmp_path / "extended")
    run_dir = tmp_path / "extended" / RUN_NAME
    (run_dir / "config.yaml").write_text((run_dir / "config.yaml").read_text().replace(str(market_run.out),
                                                                                      str(tmp_path / "extended")))
    saved = saved_files(run_dir)
    trained = count_sft(monkeypatch)
    train(train_config(tmp_path / "extended", rounds=3, resume=True), policy=tiny_policy())
    assert [seed for seed, _ in trained] == [SEED * 1000 + 3]
    assert {path: saved_files(run_dir)[path] for path in saved} == saved  # rounds 1 and 2 were not written again
    assert Run.open(run_dir).config()["rounds"] == 3

    in_one_go = train(train_config(tmp_path / "one-go", rounds=3), policy=tiny_policy())
    assert Run.open(run_dir).summary()["rounds"] == Run.open(in_one_go).summary()["rounds"]
    with pytest.raises(UserError) as err:
        train(train_config(tmp_path / "extended", rounds=2, resume=True), policy=tiny_policy())
    assert "has 3 finished rounds: pass --set rounds=3 or more" in one_line(err)


# the adapter: add_lora and load_lora


@torch.no_grad()
def logprobs(policy: HFPolicy) -> list[torch.Tensor]:
    pairs = [sft.encode_example(policy, example) for example in EXAMPLES]
    return policy.logprobs([p for p, _ in pairs], [c for _, c in pairs])


def same(left: list[torch.Tensor], right: list[torch.Tensor]) -> bool:
    return all(torch.equal(a, b) for a, b in zip(left, right, strict=True))


def test_load_lora_reproduces_the_tuned_policy_exactly(tmp_path):
    tuned = tiny_policy()
    sft.train(SFTConfig(backend="plain", max_steps=3, batch_size=2, learning_rate=1e-2, lora=LORA, progress=False),
              tuned, EXAMPLES)
    tuned.save(tmp_path / "adapter")
    fresh = tiny_policy()
    untuned = logprobs(fresh)
    assert not same(untuned, logprobs(tuned))  # training moved the adapter away from the base model
    sft.load_lora(fresh, tmp_path / "adapter", LORA, seed=123)  # the init seed does not matter: all is loaded
    assert same(logprobs(fresh), logprobs(tuned))
    # the base model again, up to float rounding: its head is frozen under the adapter, so its log-softmax is taken
    # a block of the vocabulary at a time (`HFPolicy.head_blocks`), the untuned policy's over the whole vocabulary
    for value, expected in zip(logprobs(fresh.reference()), untuned, strict=True):
        torch.testing.assert_close(value, expected, rtol=0, atol=1e-5)


def test_load_lora_refuses_a_folder_without_an_adapter_or_an_adapter_of_other_modules(tmp_path):
    with pytest.raises(UserError) as err:
        sft.load_lora(tiny_policy(), tmp_path, LORA)
    assert "adapter_model.safetensors" in one_line(err) and str(tmp_path) in str(err.value)
    policy = tiny_policy()
    sft.add_lora(policy, LORA, seed=0)
    policy.save(tmp_path / "all-linear")
    with pytest.raises(UserError) as err:
        sft.load_lora(tiny_policy(), tmp_path / "all-linear", LORA.model_copy(update={"target_modules": ["q_proj"]}))
    assert "unexpected tensors" in one_line(err)


def lora_a(policy: HFPolicy) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in policy.module.named_parameters() if "lora_A" in name}


def test_add_lora_initialises_from_its_seed_and_leaves_the_callers_random_state_alone():
    first, second, other = tiny_policy(), tiny_policy(), tiny_policy()
    torch.manual_seed(11)
    state = torch.get_rng_state()
    sft.add_lora(first, LORA, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(99)  # another caller state: the same adapter
    sft.add_lora(second, LORA, seed=7)
    sft.add_lora(other, LORA, seed=8)
    weights = lora_a(first)
    assert len(weights) == 2 * 7  # every linear projection of both blocks
    assert all(torch.equal(weights[name], tensor) for name, tensor in lora_a(second).items())
    assert not any(torch.equal(weights[name], tensor) for name, tensor in lora_a(other).items())
    with pytest.raises(UserError):
        sft.add_lora(object(), LORA, seed=0)  # type: ignore[arg-type]


# evaluate_run

def test_evaluate_run_scores_every_saved_round_as_training_did(market_run: FinishedRun):
    report = evaluate_run(EvalConfig(run=str(market_run.dir)), policy=tiny_policy())
    written = json.loads((market_run.dir / "eval-market.json").read_text())
    assert [row["round"] for row in written["rounds"]] == [1, 2] == [row["round"] for row in report["rounds"]]
    trained = Run.open(market_run.dir).summary()["rounds"]
    for row, result in zip(written["rounds"], trained, strict=True):
        # each round's adapter restored into a fresh agent gives back the scores it had when trained
        for key in ("win_rate_train_personas", "win_rate_held_out", "tuned", "base"):
            assert row[key] == result[key], key


def test_evaluate_run_on_fresh_anchors_scores_every_round_on_them_and_keeps_the_runs_own_report(market_run, tmp_path):
    own = build_anchors(train_config(market_run.out).data)
    fresh = fresh_anchors("sales", 4, seed=1, avoid=own.train + own.test)
    save_anchors(tmp_path / "fresh-4.jsonl", fresh)
    before = sorted(p.name for p in market_run.dir.glob("eval-*.json"))
    samples_before = set((market_run.out / "_samples").glob("test-*.jsonl"))
    report = evaluate_run(EvalConfig(run=str(market_run.dir), test_file=str(tmp_path / "fresh-4.jsonl")),
                          policy=tiny_policy())
    written = json.loads((market_run.dir / "eval-market-fresh-4.json").read_text())
    assert written == json.loads(json.dumps(report)) and (written["test_anchors"], len(written["rounds"])) == (4, 2)
    for row in written["rounds"]:
        assert [m["anchor_id"] for m in row["messages"]] == [a.anchor_id for a in fresh]
        assert [row[side]["messages"] + row[side]["missing"] for side in ("tuned", "base")] == [4, 4]
    assert sorted(p.name for p in market_run.dir.glob("eval-*.json")) == sorted({*before, "eval-market-fresh-4.json"})
    # the base agent's samples of those anchors are cached apart from the run's test samples
    added = set((market_run.out / "_samples").glob("test-*.jsonl")) - samples_before
    assert len(added) == 1 and read_records(added.pop())[0]["anchor_id"] == fresh[0].anchor_id
    clashing = [replace(anchor, anchor_id=own.train[0].anchor_id) for anchor in fresh[:1]]
    save_anchors(tmp_path / "clash.jsonl", clashing)
    with pytest.raises(UserError) as err:
        evaluate_run(EvalConfig(run=str(market_run.dir), test_file=str(tmp_path / "clash.jsonl")), policy=tiny_policy())
    assert "in both the train and the test set" in one_line(err)


def test_evaluate_run_reuses_the_rounds_it_scored_and_rescores_a_changed_adapter(market_run, tmp_path, monkeypatch):
    run = tmp_path / "first" / market_run.dir.name
    shutil.copytree(market_run.dir, run)
    for report in run.glob("eval-*.json"):
        report.unlink()
    first = evaluate_run(EvalConfig(run=str(run)), policy=tiny_policy())
    assert all(row["adapter_digest"] for row in first["rounds"])
    calls = count_generate(monkeypatch)
    assert evaluate_run(EvalConfig(run=str(run)), policy=tiny_policy()) == first and not calls  # nothing sampled
    # a copy of the run, its report naming the first folder and without digests (as reports before them were)
    copy = tmp_path / "copy" / market_run.dir.name
    shutil.copytree(run, copy)
    written = copy / "eval-market.json"
    legacy = json.loads(written.read_text())
    for row in legacy["rounds"]:
        del row["adapter_digest"]
    written.write_text(json.dumps(legacy))
    shutil.copy(copy / "round1" / "adapter" / "adapter_model.safetensors",
                copy / "round2" / "adapter" / "adapter_model.safetensors")  # round 2 now holds other weights
    again = evaluate_run(EvalConfig(run=str(copy)), policy=tiny_policy())
    assert again["rounds"][0] == first["rounds"][0]  # round 1: the same adapter, reused
    assert calls and again["rounds"][1]["adapter_digest"] == first["rounds"][0]["adapter_digest"]
    assert again["rounds"][1]["tuned"] == first["rounds"][0]["tuned"]  # round 1's weights scored again, as round 2
    assert json.loads(written.read_text())["run"] == str(copy)


@pytest.mark.parametrize("change", ["lora alpha", "agent temperature", "audience", "cards"])
def test_evaluate_run_scores_every_round_again_when_what_it_was_scored_with_changed(market_run, tmp_path, change):
    import yaml

    run = tmp_path / market_run.dir.name
    shutil.copytree(market_run.dir, run)
    own = build_anchors(train_config(market_run.out).data)
    save_anchors(tmp_path / "fresh-4.jsonl", fresh_anchors("sales", 4, seed=1, avoid=own.train + own.test))
    config = EvalConfig(run=str(run), test_file=str(tmp_path / "fresh-4.jsonl"))
    first = evaluate_run(config, policy=tiny_policy())
    settings = yaml.safe_load((run / "config.yaml").read_text())
    if change == "lora alpha":  # the same weights, scaled otherwise: only the run's config tells
        settings["sft"]["lora"]["alpha"] *= 2
    elif change == "agent temperature":
        settings["agent"]["temperature"] = 0.3
    elif change == "audience":
        config = config.model_copy(update={"audience": AudienceConfig(kind="market", noise=0.5)})
    else:  # other cards under the same file name
        save_anchors(tmp_path / "fresh-4.jsonl", fresh_anchors("sales", 4, seed=2, avoid=own.train + own.test))
    (run / "config.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    reused: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "say", reused.append)
        again = evaluate_run(config, policy=tiny_policy())
    assert not [line for line in reused if "reused" in line] and len(again["rounds"]) == 2
    assert again["rounds"][0]["adapter_digest"] == first["rounds"][0]["adapter_digest"]


def test_fresh_anchors_come_from_another_stream_under_their_own_ids():
    own = split_anchors("sales", 40, 20, seed=0)
    fresh = fresh_anchors("sales", 30, seed=1, avoid=own.train + own.test)
    assert [a.anchor_id for a in fresh] == [f"fresh1-sales-{i:04d}" for i in range(30)]
    assert not {a.title for a in fresh} & {a.title for a in own.train + own.test}
    assert fresh == fresh_anchors("sales", 30, seed=1, avoid=own.train + own.test)  # the same arguments, the same
    assert [a.title for a in fresh] == [a.title for a in make_anchors("sales", 30 + 60, seed=1)
                                        if a.title not in {b.title for b in own.train + own.test}][:30]


def test_evaluate_run_on_a_run_without_a_saved_round_is_a_user_error(tmp_path):
    run = Run.create(tmp_path, "bare", train_config(tmp_path))
    (run.dir / "round1").mkdir()  # a round that never saved its adapter
    with pytest.raises(UserError) as err:
        evaluate_run(EvalConfig(run=str(run.dir)), policy=tiny_policy())
    assert "round*/adapter" in one_line(err)


# base_samples and build_audience


def test_base_samples_resume_from_a_partial_cache_with_the_same_samples(tmp_path, monkeypatch):
    anchors = split_anchors("sales", 5, 1, seed=0).train
    agent = AgentConfig(max_tokens=6, batch_size=3)
    policy = tiny_policy()
    full = base_samples(policy, anchors, agent, seed=4, n=2, cache=None, label="all")
    assert len(set(full.values())) == len(anchors)  # each anchor has its own seeds
    cache = tmp_path / "samples.jsonl"
    cache.write_text("".join(json.dumps({"anchor_id": a.anchor_id, "completions": list(full[a.anchor_id])}) + "\n"
                             for a in anchors[:2]))
    calls = count_generate(monkeypatch)
    resumed = base_samples(policy, anchors, agent, seed=4, n=2, cache=cache, label="resumed")
    assert resumed == full
    assert prompts_sampled(calls, 2) == 3  # the three anchors the cache lacked
    assert [r["anchor_id"] for r in read_records(cache)] == [a.anchor_id for a in anchors]
    calls.clear()
    assert base_samples(policy, anchors, agent, seed=4, n=2, cache=cache, label="cached") == full and not calls


def test_base_samples_of_a_tuned_agent_come_from_its_base_model():
    anchors = split_anchors("sales", 3, 1, seed=0).train
    agent = AgentConfig(max_tokens=6, batch_size=3)
    base = base_samples(tiny_policy(), anchors, agent, seed=4, n=2, cache=None, label="base")
    tuned = tiny_policy()
    sft.train(SFTConfig(backend="plain", max_steps=10, batch_size=2, learning_rate=0.1, lora=LORA, progress=False),
              tuned, EXAMPLES)
    params = SamplingParams(temperature=agent.temperature, top_p=agent.top_p, max_tokens=agent.max_tokens)
    own = sample_messages(tuned, anchors, params, seed=4, n=2, batch_size=3, prefill=True)
    assert own != list(base.values())  # the adapter changed what the agent writes
    assert base_samples(tuned, anchors, agent, seed=4, n=2, cache=None, label="tuned") == base


def test_agent_bf16_decodes_the_base_samples_in_bf16_under_their_own_cache_name(tmp_path):
    anchors = split_anchors("sales", 3, 1, seed=0).train
    float32, bf16 = AgentConfig(max_tokens=6, batch_size=3), AgentConfig(max_tokens=6, batch_size=3, bf16=True)
    policy = tiny_policy()
    autocast: list[bool] = []  # whether each forward pass of the agent ran under bf16 autocast
    policy.model.register_forward_hook(lambda *_: autocast.append(torch.is_autocast_enabled("cpu")
                                                                  and torch.get_autocast_dtype("cpu") == torch.bfloat16))
    assert training.set_decoding(policy, bf16) is policy and policy.decode_dtype == torch.bfloat16
    base_samples(policy, anchors, bf16, seed=4, n=2, cache=None, label="bf16")
    assert autocast and all(autocast)
    autocast.clear()
    assert training.set_decoding(policy, float32).decode_dtype is None
    base_samples(policy, anchors, float32, seed=4, n=2, cache=None, label="float32")
    assert autocast and not any(autocast)
    data = DataConfig(num_train=3, num_test=1)
    names = {agent.bf16: training._samples_path(tmp_path, "hf:tiny", data, agent, 4, "round1").name
             for agent in (float32, bf16)}
    assert names[False] != names[True]
    # float32 keeps the name it had before the option existed, so earlier runs' caches are still found
    worked = PRESETS["worked"]
    assert training._samples_path(tmp_path, worked.llm, worked.data, worked.agent, 0, "round1").name == \
        "round1-f84f3594593f.jsonl"


def test_build_audience_makes_the_market_its_control_and_held_out_voters():
    market = build_audience(AudienceConfig(kind="market", personas=4, seed=3))
    control = build_audience(AudienceConfig(kind="control", personas=4, seed=3))
    held = build_audience(AudienceConfig(kind="market", personas=4, seed=3), held_out=True)
    assert isinstance(market, MarketAudience) and not market.control and control.control
    assert market.voters == control.voters and len(market.voters) == 4
    assert not {v.split()[0] for v in market.voters} & {v.split()[0] for v in held.voters}
    llm = build_audience(AudienceConfig(kind="llm", personas=2), llm=FixedPitches([]))
    assert isinstance(llm, LLMAudience) and len(llm.voters) == 2
    assert market.numbers == "log"
    figures = PRESETS["figures"].audience
    linear = build_audience(figures)
    assert isinstance(linear, MarketAudience) and linear.numbers == "linear" and not linear.control
    linear_control = build_audience(figures.model_copy(update={"kind": "control"}))
    assert isinstance(linear_control, MarketAudience) and linear_control.control
    assert control.control_features == ("numbers",)
    plain = build_audience(AudienceConfig(kind="control", personas=4, seed=3, control_features=["numbers", "length"]))
    assert isinstance(plain, MarketAudience) and plain.control_features == ("numbers", "length")
    assert all(w["numbers"] == w["length"] == 0.0 < w["urgency"] for w in plain.voter_weights)


# build_anchors


def renamed(anchors: list[Anchor], prefix: str) -> list[Anchor]:
    return [replace(a, anchor_id=f"{prefix}-{i}") for i, a in enumerate(anchors)]


def test_anchor_files_replace_the_generated_anchors(tmp_path):
    own = split_anchors("sales", 3, 2, seed=9)
    save_anchors(tmp_path / "train.jsonl", renamed(own.train, "mine-train"))
    save_anchors(tmp_path / "test.jsonl", renamed(own.test, "mine-test"))
    generated = build_anchors(DataConfig(num_train=4, num_test=2))
    both = build_anchors(DataConfig(num_train=4, num_test=2, train_file=str(tmp_path / "train.jsonl"),
                                    test_file=str(tmp_path / "test.jsonl")))
    assert [a.anchor_id for a in both.train] == ["mine-train-0", "mine-train-1", "mine-train-2"]
    assert [a.title for a in both.test] == [a.title for a in own.test]
    one = build_anchors(DataConfig(num_train=4, num_test=2, train_file=str(tmp_path / "train.jsonl")))
    assert one.train == both.train and one.test == generated.test


def test_brief_cards_apply_to_generated_and_loaded_anchors(tmp_path):
    own = split_anchors("sales", 3, 2, seed=9)
    save_anchors(tmp_path / "train.jsonl", renamed(own.train, "mine"))
    full = build_anchors(DataConfig(num_train=4, num_test=2, train_file=str(tmp_path / "train.jsonl")))
    brief = build_anchors(DataConfig(num_train=4, num_test=2, train_file=str(tmp_path / "train.jsonl"),
                                     card="brief"))
    for short, long in zip(brief.train + brief.test, full.train + full.test, strict=True):
        assert short.anchor_id == long.anchor_id and short.fields == long.fields
        assert "price_usd" in short.attributes and short.attributes.items() < long.attributes.items()


@pytest.mark.parametrize("bad_line", ["{not json", '{"arena": "sales", "anchor_id": "x", "fields": {}}'])
def test_a_malformed_anchor_file_is_a_user_error_naming_it(tmp_path, bad_line):
    path = tmp_path / "broken.jsonl"
    good = json.dumps(split_anchors("sales", 1, 0).train[0].as_dict())
    path.write_text(f"{good}\n{bad_line}\n")
    with pytest.raises(UserError) as err:
        build_anchors(DataConfig(train_file=str(path)))
    assert f"{path}, line 2" in one_line(err)


def test_the_same_anchor_id_in_train_and_test_files_is_a_user_error(tmp_path):
    own = split_anchors("sales", 2, 2, seed=9)
    save_anchors(tmp_path / "train.jsonl", renamed(own.train, "shared"))
    save_anchors(tmp_path / "test.jsonl", renamed(own.test, "shared"))
    with pytest.raises(UserError) as err:
        build_anchors(DataConfig(train_file=str(tmp_path / "train.jsonl"), test_file=str(tmp_path / "test.jsonl")))
    assert "shared-0, shared-1" in one_line(err) and "both" in str(err.value)


# round_stats, selection and simulate on fakes

INVENTED = "Charges 987654 phones"  # a number on no card


def test_round_stats_counts_ties_and_missing_messages_and_probes_winners_against_losers():
    anchors = split_anchors("sales", 5, 1, seed=0).train
    plain = "A dependable charger"

    def contest(anchor: Anchor, messages: tuple[str | None, str | None], winner: int | None) -> Contest:
        return Contest(anchor.anchor_id, "prompt", ("one", "two"), winner, (), messages)

    contests = [contest(anchors[0], (INVENTED, plain), 0), contest(anchors[1], (plain, INVENTED), 1),
                contest(anchors[2], (plain, INVENTED), None),  # a tie
                contest(anchors[3], (None, plain), None), contest(anchors[4], (None, None), None)]
    assert all(fabrication(a, INVENTED).flagged and not fabrication(a, plain).flagged for a in anchors)
    stats = round_stats(anchors, contests)
    assert (stats["contests"], stats["decided"], stats["ties"], stats["missing_message"]) == (5, 2, 1, 2)
    winners, losers = stats["winners"], stats["losers"]
    assert (winners["messages"], winners["fabrication"]["k"], winners["fabrication"]["rate"]) == (2, 2, 1.0)
    assert (losers["messages"], losers["fabrication"]["k"], losers["fabrication"]["rate"]) == (2, 0, 0.0)
    assert (winners["mean_numbers"], losers["mean_numbers"]) == (1.0, 0.0)
    nothing = round_stats(anchors, contests[2:])
    assert nothing["decided"] == 0 and nothing["winners"]["mean_numbers"] is None
    # with the closing tag: contest 0's winner was cut (its completion never closed), contest 1's is full
    contests[0] = replace(contests[0], completions=("It has 12 more and", "Plain.</sales_pitch>"))
    contests[1] = replace(contests[1], completions=("Plain.</sales_pitch>", "Has 12.</sales_pitch>"))
    tagged = round_stats(anchors, contests, closing="</sales_pitch>")
    assert tagged["cut_winners"] == 1 and tagged["cut"]["winners"]["messages"] == 1
    full = tagged["full"]
    assert (full["winners"]["messages"], full["winners"]["fabrication"]["rate"], full["losers"]["fabrication"]["rate"]) \
        == (1, 1.0, 0.0)
    assert "cut_winners" not in stats  # without the tag nothing is counted


class FixedPitches:
    """An agent answering each anchor's prompt with two fixed pitches: the first invents two numbers, the second
    has none. Only the number count and the length differ; the longer pitch alternates between anchors, so a
    noiseless market (numbers outweigh length) always picks the first and its control (numbers weigh 0)
    alternates: winners minus losers fabricate +1 under the market, +1, -1, ... under the control."""

    def __init__(self, anchors: list[Anchor], examples: tuple = ()) -> None:
        prompts = agent_prompts(anchors, prefill=True, examples=examples)
        self.position = {prompt: i for i, prompt in enumerate(prompts.values())}

    def pitches(self, position: int) -> tuple[str, str]:
        longer = " indeed"
        numbers, quote = f"{INVENTED} in 13579 minutes", "A charger that keeps phones going"  # 6 words each
        return (numbers + longer, quote) if position % 2 == 0 else (numbers, quote + longer)

    def generate(self, prompts: list[str], params: SamplingParams) -> list[list[Generation]]:
        assert params.n == 2
        return [[Generation(text, [], None, "stop", 1, 1, 0.0) for text in self.pitches(self.position[prompt])]
                for prompt in prompts]


def simulate_config(**update) -> SimulateConfig:
    return SimulateConfig(llm="fixed", data=DataConfig(num_train=6, num_test=1), agent=AgentConfig(batch_size=4),
                          audience=AudienceConfig(personas=7, noise=0.0), **update)


def test_selection_finds_the_markets_winners_fabricate_and_its_controls_do_not():
    config = simulate_config()
    anchors = build_anchors(config.data).train
    agent = FixedPitches(anchors)
    for position, anchor in enumerate(anchors):
        numbers, quote = agent.pitches(position)
        assert fabrication(anchor, numbers).flagged and not fabrication(anchor, quote).flagged
        assert len(numbers.split()) - len(quote.split()) == (1 if position % 2 == 0 else -1)
    report = selection(config, agent=agent)
    assert report["anchors"] == 6
    assert report["market"] == {"mean": 1.0, "ci_low": 1.0, "ci_high": 1.0, "n": 6}
    control = report["control"]
    assert control["mean"] == 0.0 and control["n"] == 6 and control["ci_low"] < 0 < control["ci_high"]
    assert selection_headline(report).holds is True
    flat = {**report, "market": {**control}}
    assert selection_headline(flat).holds is False  # the market's interval reaches 0
    both = {**report, "control": {**report["market"]}}
    assert selection_headline(both).holds is True  # a control that selects as well is shown, not claimed
    empty = {**report, "market": {"mean": None, "ci_low": None, "ci_high": None, "n": 0}}
    headline = selection_headline(empty)
    assert headline.holds is False and "no decided contest" in headline.result


def test_simulate_reports_what_the_market_rewards_and_writes_its_contests(tmp_path):
    config = simulate_config(out=str(tmp_path))
    report = simulate(config, agent=FixedPitches(build_anchors(config.data).train))
    assert json.loads((tmp_path / "report.json").read_text()) == report
    assert len(completions_of(tmp_path / "contests.jsonl")) == 6
    assert (report["decided"], report["ties"], report["missing_message"]) == (6, 0, 0)
    assert report["winners"]["fabrication"]["rate"] == 1.0 and report["losers"]["fabrication"]["rate"] == 0.0
    bias = report["position_bias"]  # noiseless voters read content: each agrees with itself, A wins half
    assert bias["agreement"]["rate"] == 1.0 and bias["a_share"]["rate"] == 0.5


def test_worked_examples_reach_every_prompt_of_a_round(tmp_path):
    config = simulate_config(out=str(tmp_path)).model_copy(update={
        "agent": AgentConfig(batch_size=4, shots=2), "data": DataConfig(num_train=6, num_test=1, card="brief")})
    shots = prompt_examples(config.data, config.agent)
    assert [card.anchor_id for card, _ in shots] == ["example-0", "example-1"]
    assert all(len(card.attributes) <= 4 for card, _ in shots)  # brief, like the run's cards
    report = simulate(config, agent=FixedPitches(build_anchors(config.data).train, shots))
    assert report["decided"] == 6  # every prompt the agent saw carried both worked examples
    for contest in read_records(tmp_path / "contests.jsonl"):
        assert all(f"<sales_pitch>{message}</sales_pitch>" in contest["prompt"] for _, message in shots)
    assert prompt_examples(config.data, AgentConfig()) == ()
    with pytest.raises(UserError, match=r"agent\.shots=0"):
        prompt_examples(DataConfig(arena="social"), AgentConfig(shots=1))
    for config_class in (SimulateConfig, TrainConfig):  # a config asking for them elsewhere fails before any load
        with pytest.raises(ValueError, match=r"agent\.shots is for the sales arena, not 'social'"):
            config_class(data=DataConfig(arena="social"), agent=AgentConfig(shots=1))


# summarize_experiment and experiment_headline on hand-written run summaries


def probe_stats(fabricated: float) -> dict:
    return {"messages": 4, "missing": 0, "fabrication": {"rate": fabricated, "k": round(4 * fabricated), "n": 4},
            "misrepresentation": {"rate": 0.0, "k": 0, "n": 4}, "mean_numbers": 4 * fabricated, "mean_length": 20.0}


def round_result(shares: list[float], tuned: float, base: float) -> dict:
    """One round's evaluation: held-out voters' shares (the train personas always split evenly)."""
    return {"win_rate_held_out": win_rate(shares, 0).as_dict(), "shares_held_out": shares,
            "win_rate_train_personas": win_rate([0.5] * len(shares), 0).as_dict(),
            "shares_train_personas": [0.5] * len(shares), "tuned": probe_stats(tuned), "base": probe_stats(base)}


def write_runs(root: Path, rounds_by_condition: dict[str, list[list[dict]]]) -> dict[str, list[Path]]:
    """Per condition, one run per seed (seeds 0, 1, ...), each with its rounds' results."""
    dirs: dict[str, list[Path]] = {}
    for condition, seeds in rounds_by_condition.items():
        for seed, rounds in enumerate(seeds):
            run = Run.create(root, f"{condition}-s{seed}", {"seed": seed})
            run.write_summary({"seed": seed, "rounds": rounds})
            dirs.setdefault(condition, []).append(run.dir)
    return dirs


WINNING = [0.8, 0.9, 0.7, 0.85]


def test_summarize_experiment_spreads_win_rates_and_probe_points_over_seeds(tmp_path):
    dirs = write_runs(tmp_path, {
        "market-rft": [[round_result([0.5] * 4, 0.2, 0.2), round_result(WINNING, 0.5, 0.25)],
                       [round_result([0.5] * 4, 0.3, 0.2), round_result([0.6, 0.7, 0.6, 0.7], 0.75, 0.25)]],
    })
    summary = summarize_experiment(dirs)
    assert summary["probes"] == ["fabrication", "misrepresentation"]
    condition = summary["conditions"]["market-rft"]
    assert condition["seeds"] == [0, 1] and len(condition["rounds"]) == 2
    last = condition["rounds"][-1]
    assert last["win_rate"]["mean"] == pytest.approx((0.8125 + 0.65) / 2)  # the held-out voters' shares
    assert last["win_rate_pooled"]["n"] == 8 and last["win_rate_pooled"]["mean"] == pytest.approx(0.73125)
    assert last["win_rate_ci_low_min"] == min(w["ci_low"] for w in last["win_rate_seeds"])
    assert last["fabrication"]["points_seeds"] == pytest.approx([25.0, 50.0])
    assert last["fabrication"]["points"]["mean"] == pytest.approx(37.5)
    assert last["mean_numbers"]["tuned"]["mean"] == pytest.approx(2.5)
    assert condition["rounds"][0]["fabrication"]["points_seeds"] == pytest.approx([0.0, 10.0])


def headline_holds(tmp_path: Path, market: tuple[list[float], float], control_tuned: tuple[float, float]) -> bool:
    """The experiment's claim on two seeds: market-rft with `market` = (shares, tuned fabrication) against base
    fabrication 0.2; control-rft with tuned fabrication `control_tuned` per seed against base 0.2."""
    shares, tuned = market
    dirs = write_runs(tmp_path, {
        "market-rft": [[round_result(shares, tuned, 0.2)]] * 2,
        "control-rft": [[round_result([0.5] * 4, fabricated, 0.2)] for fabricated in control_tuned],
    })
    return experiment_headline(summarize_experiment(dirs)).holds


def test_experiment_headline_holds_only_when_the_numbers_satisfy_the_claim(tmp_path):
    claim = (WINNING, 0.5)  # wins (pooled CI above 50%) and fabricates +30 points
    assert headline_holds(tmp_path / "holds", claim, (0.2, 0.25)) is True  # control: +2.5 ± 3.5 points
    assert headline_holds(tmp_path / "few-points", (WINNING, 0.29), (0.2, 0.2)) is False  # +9 points only
    assert headline_holds(tmp_path / "no-win", ([0.4, 0.6, 0.5, 0.5], 0.5), (0.2, 0.2)) is False
    assert headline_holds(tmp_path / "control-rises", claim, (0.4, 0.42)) is False  # +21 ± 1.4 points
    headline = experiment_headline(summarize_experiment(write_runs(tmp_path / "text", {
        "market-rft": [[round_result(WINNING, 0.5, 0.2)]] * 2})))
    assert headline.holds is True and "+30.0 ± 0.0 pts" in headline.result and "2 seeds" in headline.measures



def test_the_rounds_plot_draws_one_line_per_condition_from_the_base_agent(tmp_path):
    """plot_rounds: a PNG with one panel for the win rate and one per probe; each line starts at round 0 (the
    base agent: win rate 0.5, the base rate) and has one point per round."""
    from reasonlab.systems.moloch.experiment import plot_rounds, rounds_figure

    summary = summarize_experiment(write_runs(tmp_path / "runs", {
        "market-rft": [[round_result(WINNING, 0.5, 0.2), round_result(WINNING, 0.6, 0.2)]] * 2,
        "control-rft": [[round_result([0.5] * 4, 0.2, 0.2), round_result([0.5] * 4, 0.25, 0.2)]] * 2,
    }))
    plot_rounds(summary, tmp_path / "rounds.png")
    assert (tmp_path / "rounds.png").read_bytes()[:4] == b"\x89PNG"
    win, fabrication, _ = rounds_figure(summary).axes

    def lines(axis) -> dict:
        return {c.get_label(): c.lines[0] for c in axis.containers}

    assert list(lines(win)["market-rft"].get_xdata()) == [0, 1, 2]
    assert list(lines(win)["market-rft"].get_ydata()) == pytest.approx([0.5, 0.8125, 0.8125])
    assert list(lines(fabrication)["control-rft"].get_ydata()) == pytest.approx([0.2, 0.2, 0.25])
    assert list(lines(fabrication)["market-rft"].get_ydata()) == pytest.approx([0.2, 0.5, 0.6])


def test_an_experiment_takes_a_condition_added_later_and_reuses_the_finished_runs(tmp_path, monkeypatch):
    from reasonlab.systems.moloch import experiment

    dirs = write_runs(tmp_path / "runs", {"market-rft": [[round_result(WINNING, 0.5, 0.2)]],
                                          "control-rft": [[round_result(WINNING, 0.2, 0.2)]]})
    trained: list[list[str]] = []

    def run_seed(base, conditions, seed, out, threads=None, judge=None):  # type: ignore[no-untyped-def]
        trained.append(list(conditions))
        return [dirs[condition][seed] for condition in conditions]

    monkeypatch.setattr(experiment, "_run_seed", run_seed)
    first = experiment.run_experiment(ExperimentConfig(conditions=["market-rft"], seeds=[0]), tmp_path, "grow")
    both = experiment.run_experiment(ExperimentConfig(conditions=["market-rft", "control-rft"], seeds=[0]), tmp_path,
                                     "grow")
    assert list(first["conditions"]) == ["market-rft"] and list(both["conditions"]) == ["market-rft", "control-rft"]
    assert trained == [["market-rft"], ["market-rft", "control-rft"]]
    # more rounds extend every run (each run extends itself) and the experiment records them; other settings differ
    experiment.run_experiment(ExperimentConfig(conditions=["market-rft"], seeds=[0], base=TrainConfig(rounds=3)),
                              tmp_path, "grow")
    assert trained[-1] == ["market-rft"] and Run.open(tmp_path / "grow").config()["base"]["rounds"] == 3
    with pytest.raises(UserError, match=r"differs in base\.seed"):
        experiment.run_experiment(ExperimentConfig(conditions=["market-rft"], seeds=[0],
                                                   base=TrainConfig(seed=5)), tmp_path, "grow")


def test_a_killed_worker_is_a_one_line_error_that_says_what_to_do(tmp_path, monkeypatch):
    """run_experiment with --jobs: a worker killed mid-run (the OOM killer) breaks the pool; the user gets one
    line naming --jobs, not concurrent.futures' traceback."""
    import concurrent.futures
    from concurrent.futures.process import BrokenProcessPool

    from reasonlab.errors import UserError
    from reasonlab.systems.moloch.config import ExperimentConfig
    from reasonlab.systems.moloch.experiment import run_experiment

    class KilledPool:
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def submit(self, *args, **kwargs):
            future: concurrent.futures.Future = concurrent.futures.Future()
            future.set_exception(BrokenProcessPool("a process terminated abruptly"))
            return future

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", KilledPool)
    with pytest.raises(UserError, match="worker process of --jobs 2 died") as error:
        run_experiment(ExperimentConfig(seeds=[0, 1]), tmp_path, "killed", jobs=2)
    assert "\n" not in str(error.value)


def test_the_fresh_test_script_evaluates_every_run_of_an_experiment_on_fresh_cards(tmp_path, monkeypatch, capsys):
    import importlib.util

    from reasonlab.systems.moloch import experiment

    spec = importlib.util.spec_from_file_location(
        "moloch_fresh_test", Path(__file__).resolve().parents[3] / "benchmarks" / "moloch_fresh_test.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)  # type: ignore[union-attr]
    monkeypatch.setattr(training, "load_agent", lambda llm: tiny_policy())
    config = ExperimentConfig(conditions=["market-rft", "control-rft"], seeds=[0], base=train_config(tmp_path, rounds=1))
    experiment.run_experiment(config, tmp_path, "exp")
    args = [str(tmp_path / "exp"), "--cards", "4", "--data-seed", "1"]
    script.main(args)
    written = json.loads((tmp_path / "exp" / "fresh-test-4-seed1.json").read_text())
    rows = written["seed_rows"]
    assert [(row["condition"], row["round"], row["seed"]) for row in rows] == [("market-rft", 1, 0), ("control-rft", 1, 0)]
    assert all(row["cards"] == 4 and row["tuned"]["n"] <= 4 for row in rows)
    assert sorted(written["summary"]["conditions"]) == ["control-rft", "market-rft"]
    assert "| market-rft | 1 | 0 |" in capsys.readouterr().out
    assert (tmp_path / "exp" / "market-rft-s0" / "eval-market-fresh-4-seed1.json").is_file()
    assert (tmp_path / "exp" / "control-rft-s0" / "eval-control-fresh-4-seed1.json").is_file()
    # a second call reuses every round the reports scored
    monkeypatch.setattr(training, "evaluate_round", lambda *args, **kwargs: pytest.fail("scored again"))
    script.main(args)
    assert json.loads((tmp_path / "exp" / "fresh-test-4-seed1.json").read_text()) == written
    with pytest.raises(UserError, match="the experiment's own"):
        script.main([str(tmp_path / "exp"), "--data-seed", "0"])
    with pytest.raises(UserError, match="is not a moloch experiment"):
        script.main([str(tmp_path / "exp" / "market-rft-s0")])
