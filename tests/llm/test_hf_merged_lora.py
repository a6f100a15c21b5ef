"""The hf backend decodes a LoRA model with the adapter folded into the base weights (`merged_lora`): the same
generations as the adapter applied beside each layer (`merge_lora=False`), and afterwards the very same base
weights, bit for bit, with the adapter on again."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reasonlab.llm import SamplingParams, load_llm
from reasonlab.llm.hf import HFPolicy, merged_lora

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PROMPTS = ["The capital of France is", "def add(a, b):"]


@pytest.fixture
def policy(tiny_hf_folder: Path) -> HFPolicy:
    """The tiny Llama with a LoRA adapter whose B is nonzero (as after training), so the adapter changes outputs."""
    from reasonlab.train.sft import LoRAConfig, add_lora

    policy = load_llm(f"hf:{tiny_hf_folder}")
    add_lora(policy, LoRAConfig(r=4, alpha=8, dropout=0.0), seed=0)
    with torch.no_grad():
        for name, parameter in policy.module.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.05)
    return policy


def _base_weights(policy: HFPolicy) -> dict[str, torch.Tensor]:
    return {name: p for name, p in policy.module.named_parameters() if "base_layer" in name}


def _generate(policy: HFPolicy, merge: bool, temperature: float) -> list:
    policy.merge_lora = merge
    params = SamplingParams(temperature=temperature, max_tokens=10, n=2, seed=3, logprobs=True)
    return [g for group in policy.generate(PROMPTS, params) for g in group]


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_merged_decoding_matches_the_adapter_beside_each_layer(policy: HFPolicy, temperature: float):
    expected = _generate(policy, False, temperature)
    got = _generate(policy, True, temperature)
    for generation, want in zip(got, expected, strict=True):
        assert generation.token_ids == want.token_ids
        torch.testing.assert_close(torch.tensor(generation.logprobs), torch.tensor(want.logprobs), rtol=1e-4,
                                   atol=1e-4)


def test_the_adapter_changes_what_is_decoded(policy: HFPolicy):
    adapted = [g.logprobs for g in _generate(policy, True, 0.0)]
    with policy.module.disable_adapter():
        plain = [g.logprobs for g in _generate(policy, True, 0.0)]
    assert adapted != plain  # so the test above compares decodings that use the adapter


def test_the_base_weights_come_back_bit_for_bit_with_the_adapter_on(policy: HFPolicy):
    before = {name: (p, p.detach().clone()) for name, p in _base_weights(policy).items()}
    assert before
    with merged_lora(policy.module) as merged:
        assert merged
        inside = _base_weights(policy)
        assert any(not torch.equal(inside[name], saved) for name, (_, saved) in before.items())
    after = _base_weights(policy)
    for name, (parameter, saved) in before.items():
        assert after[name] is parameter and torch.equal(parameter, saved)
    layers = [m for m in policy.module.modules() if hasattr(m, "lora_A") and hasattr(m, "base_layer")]
    assert layers and not any(layer.disable_adapters or layer.merged for layer in layers)


def test_nothing_is_merged_without_an_active_adapter(policy: HFPolicy, tiny_hf_folder: Path):
    with policy.module.disable_adapter(), merged_lora(policy.module) as merged:
        assert not merged
    with merged_lora(load_llm(f"hf:{tiny_hf_folder}").module) as merged:
        assert not merged


def test_a_failed_decoding_still_restores_the_base_weights(policy: HFPolicy):
    before = {name: p for name, p in _base_weights(policy).items()}
    with pytest.raises(RuntimeError), merged_lora(policy.module):
        raise RuntimeError("decoding failed")
    assert all(_base_weights(policy)[name] is p for name, p in before.items())
