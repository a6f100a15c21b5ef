"""The hf backend's shared prefix and batched rows: the tokens every row of a request starts with go through the
model once, in `logprobs` (training) and in generation's first forward pass; `logprobs` runs its rows as one
right-padded batch (`batch_rows`) and projects only completion positions onto the vocabulary. Checked against the
reference path (`share_prefix=False`, `batch_rows=False`: one whole row at a time) on a tiny Llama and on a tiny
Gemma-3 whose sliding window is shorter than the rows: the same logprobs, gradients and generations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from reasonlab.llm import SamplingParams, load_llm
from reasonlab.llm.hf import HFPolicy, shared_prefix_length

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# a long shared instruction (about 30 tokens of the tiny BPE), then rows that differ
SHARED = "The capital of France is Paris. One, two, three, four. " * 2
PROMPTS = [SHARED + "def add(a, b):", SHARED + '{"answer": 42}', SHARED + "One, two"]
COMPLETIONS = [" return a + b", " Paris.", ", three, four."]


def test_shared_prefix_length_counts_common_tokens_short_of_the_last():
    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 3]], minimum=1) == 2  # the shortest row keeps one
    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 9, 4]], minimum=1) == 2
    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 9, 4]], minimum=3) == 0  # too short to pay
    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 3, 4]], minimum=1) == 3  # copies of one prompt
    assert shared_prefix_length([[1, 2, 3, 4]], minimum=1) == 0  # one row: nothing to share
    assert shared_prefix_length([[5, 2], [1, 2]], minimum=0) == 0


@pytest.fixture(params=["llama", "gemma3"])
def policy(request: pytest.FixtureRequest, tiny_hf_folder: Path, tiny_gemma: Any) -> HFPolicy:
    """A fresh tiny model of each kind (tests here change its weights)."""
    return load_llm(f"hf:{tiny_hf_folder}") if request.param == "llama" else tiny_gemma()


def _add_lora(policy: HFPolicy) -> None:
    from reasonlab.train.sft import LoRAConfig, add_lora

    add_lora(policy, LoRAConfig(r=4, alpha=8, dropout=0.0), seed=0)
    with torch.no_grad():  # a nonzero B, so the adapter's gradients reach through the prefix
        for name, parameter in policy.module.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.05)


def _loss_and_grads(policy: HFPolicy, share: bool, batch: bool = False, prompts: list[str] = PROMPTS,
                    completions: list[str] = COMPLETIONS) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    policy.share_prefix, policy.batch_rows = share, batch
    trainable = [p for p in policy.module.parameters() if p.requires_grad]
    for parameter in trainable:
        parameter.grad = None
    rows = policy.logprobs([policy.tokenize(p) for p in prompts],
                           [policy.tokenize(c, add_special_tokens=False) for c in completions], 1.0)
    (-torch.cat(rows).sum()).backward()
    return [r.detach() for r in rows], [p.grad.clone() for p in trainable]


def test_the_rows_share_more_than_the_minimum(policy: HFPolicy):
    rows = [policy.tokenize(p) for p in PROMPTS]
    shared = shared_prefix_length(rows)
    assert shared > 16  # so the tests below take the shared path, past the gemma's 8-token window
    assert all(len(row) - shared > 1 for row in rows)


@pytest.mark.parametrize(("share", "batch"), [(True, False), (False, True), (True, True)])
def test_logprobs_and_gradients_match_the_reference_path(policy: HFPolicy, share: bool, batch: bool):
    _add_lora(policy)
    policy.module.train()
    reference_rows, reference_grads = _loss_and_grads(policy, share=False, batch=False)
    rows, grads = _loss_and_grads(policy, share=share, batch=batch)
    for row, expected in zip(rows, reference_rows, strict=True):
        assert row.shape == expected.shape
        torch.testing.assert_close(row, expected, rtol=1e-5, atol=1e-5)
    assert all(g.abs().sum() > 0 for g in reference_grads)
    for grad, expected in zip(grads, reference_grads, strict=True):
        torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-5)


def test_rows_of_two_kinds_are_batched_in_two_groups_each_with_its_prefix(policy: HFPolicy):
    other = "Below is some information and two messages written about it, to be read with care. " * 2
    prompts = [PROMPTS[0], other + "Option 1", PROMPTS[1], other + "Option 2 is longer than the first", PROMPTS[2]]
    completions = [*COMPLETIONS[:2], " Paris.", " yes", COMPLETIONS[2]]
    _add_lora(policy)
    policy.module.train()
    reference_rows, reference_grads = _loss_and_grads(policy, False, False, prompts, completions)
    shapes = _decoder_inputs(policy)
    rows, grads = _loss_and_grads(policy, True, True, prompts, completions)
    assert [rows_in_pass for rows_in_pass, _ in shapes] == [1, 3, 1, 2]  # each kind: its prefix, then its rows
    for row, expected in zip(rows, reference_rows, strict=True):
        torch.testing.assert_close(row, expected, rtol=1e-5, atol=1e-5)
    for grad, expected in zip(grads, reference_grads, strict=True):
        torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-5)


def test_batched_rows_apply_the_logit_softcap(tiny_gemma: Any):
    policy = tiny_gemma(softcap=0.5)  # small enough to change every logit
    reference, _ = _loss_and_grads(policy, share=False, batch=False)
    rows, _ = _loss_and_grads(policy, share=True, batch=True)
    for row, expected in zip(rows, reference, strict=True):
        torch.testing.assert_close(row, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("softcap", [None, 0.5])
def test_a_frozen_head_takes_the_vocabulary_in_blocks_with_the_same_numbers(tiny_gemma: Any,
                                                                            monkeypatch: pytest.MonkeyPatch,
                                                                            softcap: float | None):
    """Under LoRA the head is frozen and batched rows take its log-softmax a block at a time (`head_blocks`): the
    whole-vocabulary head is never called, and logprobs and gradients are the reference path's."""
    import reasonlab.llm.head as head

    monkeypatch.setattr(head, "_MIN_BLOCK", 1)
    monkeypatch.setattr(head, "BLOCK_BYTES", 4 * 64 * 7)  # blocks of a few entries: many per call
    policy = tiny_gemma(softcap=softcap)
    _add_lora(policy)
    policy.module.train()
    reference_rows, reference_grads = _loss_and_grads(policy, share=False, batch=False)
    calls: list[int] = []
    policy.module.get_output_embeddings().register_forward_pre_hook(lambda _, args: calls.append(1))
    rows, grads = _loss_and_grads(policy, share=True, batch=True)
    assert calls == []
    for row, expected in zip(rows, reference_rows, strict=True):
        torch.testing.assert_close(row, expected, rtol=1e-5, atol=1e-5)
    for grad, expected in zip(grads, reference_grads, strict=True):
        torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-5)
    policy.head_blocks = False
    _loss_and_grads(policy, share=True, batch=True)
    assert calls == [1]


def _decoder_inputs(policy: HFPolicy) -> list[tuple[int, int]]:
    """(rows, tokens) of each pass through the decoder, recorded from now on."""
    shapes: list[tuple[int, int]] = []
    policy.module.get_decoder().register_forward_pre_hook(
        lambda _, args, kwargs: shapes.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True)
    return shapes


def test_the_shared_path_runs_the_prefix_once(policy: HFPolicy):
    policy.batch_rows = False
    shapes = _decoder_inputs(policy)
    prompts = [policy.tokenize(p) for p in PROMPTS]
    policy.logprobs(prompts, [policy.tokenize(c, add_special_tokens=False) for c in COMPLETIONS], 1.0)
    shared = shared_prefix_length(prompts)
    assert shapes[0] == (1, shared) and len(shapes) == 1 + len(PROMPTS)
    assert sum(tokens for _, tokens in shapes) < sum(len(p) for p in prompts) + shared  # rows start after it


def test_batched_rows_run_once_after_the_prefix_and_project_only_completions(policy: HFPolicy):
    shapes = _decoder_inputs(policy)
    projected: list[int] = []
    policy.module.get_output_embeddings().register_forward_pre_hook(lambda _, args: projected.append(args[0].shape[0]))
    prompts = [policy.tokenize(p) for p in PROMPTS]
    completions = [policy.tokenize(c, add_special_tokens=False) for c in COMPLETIONS]
    policy.logprobs(prompts, completions, 1.0)
    shared = shared_prefix_length(prompts)
    widest = max(len(p) + len(c) for p, c in zip(prompts, completions, strict=True)) - shared
    assert shapes == [(1, shared), (len(PROMPTS), widest)]
    assert projected == [sum(map(len, completions))]


def _assert_same_generations(policy: HFPolicy, prompts: list[str], params: SamplingParams) -> None:
    policy.share_prefix = False
    expected = policy.generate(prompts, params)
    policy.share_prefix = True
    got = policy.generate(prompts, params)
    for group, reference in zip(got, expected, strict=True):
        for generation, want in zip(group, reference, strict=True):
            assert generation.token_ids == want.token_ids
            torch.testing.assert_close(torch.tensor(generation.logprobs), torch.tensor(want.logprobs),
                                       rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_generation_matches_the_reference_path(tiny_hf_folder: Path, tiny_gemma: Any, temperature: float):
    # prompts of different lengths are left-padded, and a sliding window counts pads (in either path): the Gemma's
    # window here spans the rows; past it, the next test decodes copies of one prompt, which need no padding
    params = SamplingParams(temperature=temperature, max_tokens=12, n=2, seed=5, logprobs=True)
    for policy in (load_llm(f"hf:{tiny_hf_folder}"), tiny_gemma(window=128)):
        _assert_same_generations(policy, PROMPTS, params)


def test_generation_past_the_sliding_window_matches_the_reference_path(tiny_gemma: Any):
    policy = tiny_gemma(window=8)
    _assert_same_generations(policy, PROMPTS[:1], SamplingParams(temperature=1.0, max_tokens=12, n=3, seed=2,
                                                                 logprobs=True))


def test_generation_of_prompts_with_nothing_shared_is_unchanged(policy: HFPolicy):
    params = SamplingParams(temperature=1.0, max_tokens=8, n=1, seed=1)
    prompts = ["def add(a, b):", '{"answer": 42}']
    policy.share_prefix = False
    expected = [g[0].token_ids for g in policy.generate(prompts, params)]
    policy.share_prefix = True
    assert [g[0].token_ids for g in policy.generate(prompts, params)] == expected
