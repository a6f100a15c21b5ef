"""`HFPolicy.drop_finished`: `generate` takes a row out of the batch (and out of its KV cache) once it has finished,
instead of decoding pad tokens for it until the longest row ends. Checked against the reference path
(`drop_finished=False`) on a tiny Llama and a tiny Gemma-3 with a sliding window: the same tokens, logprobs and
finish reasons, with the batch shrinking as rows stop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from reasonlab.llm import SamplingParams, load_llm
from reasonlab.llm.hf import HFPolicy

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PROMPTS = ["The capital of France is", "def add(a, b):", '{"answer": 42,', "One, two, three,"]


@pytest.fixture(params=["llama", "gemma3"])
def policy(request: pytest.FixtureRequest, tiny_hf_folder: Path, tiny_gemma: Any) -> HFPolicy:
    return load_llm(f"hf:{tiny_hf_folder}") if request.param == "llama" else tiny_gemma(window=6)


def _batch_sizes(policy: HFPolicy) -> list[int]:
    """Rows in each forward pass of the model from now on."""
    sizes: list[int] = []
    policy.module.register_forward_pre_hook(lambda _, args, kwargs: sizes.append(kwargs["input_ids"].shape[0]),
                                            with_kwargs=True)
    return sizes


def _stop_params(policy: HFPolicy, temperature: float) -> SamplingParams:
    """Parameters under which the rows end at different steps: a stop string that some rows reach early."""
    probe = policy.generate(PROMPTS, SamplingParams(temperature=temperature, max_tokens=16, n=2, seed=3))
    texts = [g.text for group in probe for g in group]
    # the character found in closest to half of the rows' texts: those rows stop on it, the others run on
    stop = min(sorted(set("".join(texts))), key=lambda c: abs(sum(c in t for t in texts) - len(texts) / 2))
    assert 0 < sum(stop in t for t in texts) < len(texts), texts
    return SamplingParams(temperature=temperature, max_tokens=16, n=2, seed=3, stop=[stop], logprobs=True)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_dropping_finished_rows_changes_no_token(policy: HFPolicy, temperature: float):
    params = _stop_params(policy, temperature)
    policy.drop_finished = False
    expected = policy.generate(PROMPTS, params)
    policy.drop_finished = True
    sizes = _batch_sizes(policy)
    got = policy.generate(PROMPTS, params)
    reasons = [g.finish_reason for group in got for g in group]
    assert "stop" in reasons and "length" in reasons  # rows ended at different steps
    # the prompts' pass (after their shared tokens, which go through the decoder alone) holds every row; then the
    # batch only shrinks, and ends smaller than it began
    assert sizes[0] == len(PROMPTS) * 2 and sizes[-1] < sizes[0]
    assert sizes == sorted(sizes, reverse=True)
    for group, reference in zip(got, expected, strict=True):
        for generation, want in zip(group, reference, strict=True):
            assert generation.token_ids == want.token_ids
            assert generation.finish_reason == want.finish_reason and generation.text == want.text
            torch.testing.assert_close(torch.tensor(generation.logprobs), torch.tensor(want.logprobs),
                                       rtol=1e-4, atol=1e-4)


def test_the_reference_path_keeps_every_row_to_the_end(policy: HFPolicy):
    params = _stop_params(policy, 1.0)
    policy.drop_finished = False
    sizes = _batch_sizes(policy)
    policy.generate(PROMPTS, params)
    assert set(sizes) == {len(PROMPTS) * 2}
