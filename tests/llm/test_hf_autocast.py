"""The hf backend under autocast: frozen linear weights cast once (bit-identical to autocast's own casts, renewed
when a weight changes) and generation in bfloat16 through `decode_dtype`."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from reasonlab.llm import SamplingParams, load_llm
from reasonlab.llm.hf import _CastOnceLinear

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PROMPTS = ["The capital of France is", "One, two, three"]
COMPLETIONS = ["a city by the river", " four five six"]


@pytest.fixture
def policy(tiny_hf_folder: Path):
    """A fresh tiny Llama (tests here change its weights and modules)."""
    return load_llm(f"hf:{tiny_hf_folder}")


def _cast_once_linears(policy) -> list[nn.Module]:
    return [m for m in policy.module.modules() if type(m) is _CastOnceLinear]


def _plain(policy) -> None:
    for module in _cast_once_linears(policy):
        module.__class__ = nn.Linear


def _bf16_loss_and_grads(policy) -> tuple[float, list[torch.Tensor]]:
    """One LoRA SFT pass as `reasonlab.train.sft` runs it with bf16: logprobs under autocast, backward outside."""
    trainable = [p for p in policy.module.parameters() if p.requires_grad]
    for parameter in trainable:
        parameter.grad = None
    prompts = [policy.tokenize(p) for p in PROMPTS]
    completions = [policy.tokenize(c) for c in COMPLETIONS]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        rows = policy.logprobs(prompts, completions, 1.0)
    loss = -torch.cat(rows).sum()
    loss.backward()
    return float(loss), [p.grad.clone() for p in trainable]


def _add_lora(policy) -> None:
    from reasonlab.train.sft import LoRAConfig, add_lora

    add_lora(policy, LoRAConfig(r=4, alpha=8, dropout=0.0), seed=0)
    with torch.no_grad():  # a nonzero B, so the adapter's gradients depend on the frozen weights' path
        for name, parameter in policy.module.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.02)


def test_every_plain_linear_casts_once_and_stays_an_nn_linear(policy) -> None:
    linears = _cast_once_linears(policy)
    assert linears and all(isinstance(m, nn.Linear) for m in linears)
    assert not [m for m in policy.module.modules() if type(m) is nn.Linear]
    _add_lora(policy)  # peft wraps the same modules; its new lora_A/lora_B layers are made cast-once too
    assert any("lora_A" in name for name, m in policy.module.named_modules() if type(m) is _CastOnceLinear)


def test_a_lora_bf16_pass_is_bit_identical_to_autocasts_own_casts(policy) -> None:
    _add_lora(policy)
    cached_loss, cached_grads = _bf16_loss_and_grads(policy)
    assert cached_grads and any(g.abs().sum() > 0 for g in cached_grads)
    _plain(policy)
    plain_loss, plain_grads = _bf16_loss_and_grads(policy)
    assert cached_loss == plain_loss
    assert all(torch.equal(a, b) for a, b in zip(cached_grads, plain_grads, strict=True))


@pytest.mark.parametrize("through_data", [False, True], ids=["tracked", "through-data"])
def test_a_weight_changed_in_place_is_cast_again(policy, through_data: bool) -> None:
    _add_lora(policy)
    before, _ = _bf16_loss_and_grads(policy)
    with torch.no_grad():  # in place, same storage: as an optimizer step does, or peft's merge (through .data,
        for module in _cast_once_linears(policy):  # which bumps no version counter)
            if not module.weight.requires_grad:
                (module.weight.data if through_data else module.weight).mul_(1.5)
    changed, changed_grads = _bf16_loss_and_grads(policy)
    _plain(policy)
    plain, plain_grads = _bf16_loss_and_grads(policy)
    assert changed != before
    assert changed == plain and all(torch.equal(a, b) for a, b in zip(changed_grads, plain_grads, strict=True))


def test_without_autocast_nothing_changes_and_a_deep_copy_computes_the_same(policy) -> None:
    params = SamplingParams(max_tokens=8, temperature=0.0)
    ours = [g[0].token_ids for g in policy.generate(PROMPTS, params)]
    copied = copy.deepcopy(policy.module)
    assert all(type(m) is not nn.Linear for m in copied.modules())
    ids = torch.tensor([policy.tokenize(PROMPTS[0])])
    with torch.no_grad():
        assert torch.equal(copied(input_ids=ids).logits, policy.module(input_ids=ids).logits)
    _plain(policy)
    assert [g[0].token_ids for g in policy.generate(PROMPTS, params)] == ours


def test_decode_dtype_generates_in_bf16_seeded_and_is_off_by_default(policy) -> None:
    assert policy.decode_dtype is None
    params = SamplingParams(max_tokens=8, temperature=1.0, seed=5, n=2, logprobs=True)
    float32 = policy.generate(PROMPTS, params)
    policy.decode_dtype = torch.bfloat16
    first, second = policy.generate(PROMPTS, params), policy.generate(PROMPTS, params)
    assert [[g.token_ids for g in group] for group in first] == [[g.token_ids for g in group] for group in second]
    assert all(len(g.token_ids) == len(g.logprobs) > 0 for group in first for g in group)
    # the bf16 pass is a different computation: its logprobs are not float32's for the same tokens
    greedy = SamplingParams(max_tokens=6, temperature=0.0, logprobs=True)
    bf16_greedy = policy.generate(PROMPTS[:1], greedy)[0][0]
    policy.decode_dtype = None
    fp32_greedy = policy.generate(PROMPTS[:1], greedy)[0][0]
    assert bf16_greedy.logprobs != fp32_greedy.logprobs
    assert [[g.token_ids for g in group] for group in policy.generate(PROMPTS, params)] == \
        [[g.token_ids for g in group] for group in float32]


def test_a_callers_own_autocast_stays_in_force_when_decode_dtype_is_unset(policy) -> None:
    seen: list[bool] = []  # whether each forward pass ran under bf16 autocast
    policy.model.register_forward_hook(lambda *_: seen.append(torch.is_autocast_enabled("cpu")))
    params = SamplingParams(max_tokens=4, temperature=0.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as webscale-rl's bf16 evaluation wraps generate
        policy.generate(PROMPTS, params)
    assert seen and all(seen)
    seen.clear()
    policy.generate(PROMPTS, params)
    assert seen and not any(seen)
