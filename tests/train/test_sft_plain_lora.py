"""SFT's plain backend on an hf policy: a LoRA adapter through `policy.enable_lora` (only adapter weights move,
the loss falls, `reference()` is the untuned model), bf16 autocast on CPU, and the one-line error for LoRA on a
tinylm. A tiny random Llama (built from a config, no hub) over a word-level tokenizer."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers")
pytest.importorskip("peft")

from reasonlab.errors import UserError  # noqa: E402
from reasonlab.train.sft import Example, LoRAConfig, SFTConfig, encode_example, train  # noqa: E402
from reasonlab.train.tinylm import TinyLM, TinyLMConfig, Tokenizer  # noqa: E402
from tiny_hf import tiny_llama, word_tokenizer  # noqa: E402

WORDS = ["<pad>", "<eos>", "?", *[str(i) for i in range(10)], "+", "="]
# init std of the random weights: with the default 0.02 the frozen output head keeps every logit within
# about +-0.6, so no adapter could fit the sums; 0.2 leaves room
INIT = 0.2
SUMS = [Example(f"{a} + {b} =", f" {a + b}") for a in range(4) for b in range(4)]


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Tiny models: one torch thread per test."""


def tiny_policy():
    """An hf-backend policy around a 2-layer, width-32 random Llama over WORDS (seed 0)."""
    from reasonlab.llm.hf import HFPolicy

    return HFPolicy(tiny_llama(len(WORDS), initializer_range=INIT), word_tokenizer(WORDS, unknown="?"), device="cpu")


def lora_config(**overrides) -> SFTConfig:
    fields = dict(
        backend="plain",
        max_steps=30,
        batch_size=8,
        learning_rate=1e-2,
        progress=False,
        lora=LoRAConfig(r=4, alpha=8, dropout=0.0),
    )
    return SFTConfig(**{**fields, **overrides})


@torch.no_grad()
def logprobs(policy) -> list[torch.Tensor]:
    pairs = [encode_example(policy, example) for example in SUMS]
    return policy.logprobs([p for p, _ in pairs], [c for _, c in pairs])


def test_examples_encode_as_words():
    policy = tiny_policy()
    prompt, completion = encode_example(policy, SUMS[5])
    assert policy.detokenize(prompt) == "1 + 1 =" and completion == [WORDS.index("2"), policy.eos_token_id]


def test_plain_lora_moves_only_adapter_weights_and_lowers_the_loss():
    policy = tiny_policy()
    model = policy.module
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    result = train(lora_config(), policy, SUMS, eval_examples=SUMS)
    assert type(policy.module).__name__ == "PeftModelForCausalLM" and not policy.module.training
    after = {name.replace(".base_layer", ""): tensor for name, tensor in model.state_dict().items()}
    adapters = {name: tensor for name, tensor in after.items() if "lora_" in name}
    # every linear projection of both blocks got an adapter (all-linear; the output head is left out)
    assert len([name for name in adapters if "lora_A" in name]) == 2 * 7
    assert all(not name.startswith("lm_head") for name in adapters)
    assert {name for name in after if name not in adapters} == set(before)
    for name, tensor in before.items():
        assert torch.equal(after[name], tensor), f"base weight {name} changed"
    # lora_B starts at zero: each one moved
    assert all(tensor.abs().sum() > 0 for name, tensor in adapters.items() if "lora_B" in name)
    trainable = [name for name, p in policy.module.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)

    assert result.steps == 30 and all(torch.isfinite(torch.tensor(result.train_losses)))
    assert result.train_losses[-1] < 0.1 * result.train_losses[0]
    assert result.eval_loss_after < 0.1 * result.eval_loss_before


def test_reference_disables_the_adapter():
    policy = tiny_policy()
    untuned = logprobs(policy)
    train(lora_config(), policy, SUMS)
    reference = policy.reference()
    for ref, base in zip(logprobs(reference), untuned, strict=True):
        torch.testing.assert_close(ref, base, rtol=0, atol=1e-6)
    tuned = logprobs(policy)
    assert max((t - u).abs().max().item() for t, u in zip(tuned, untuned, strict=True)) > 0.1
    # the reference shares the model: it sees no copy of the weights, and the adapter stays on for the policy
    assert reference.module is policy.module
    for again, t in zip(logprobs(policy), tuned, strict=True):
        torch.testing.assert_close(again, t, rtol=0, atol=0)


def dtypes_seen(policy, config: SFTConfig) -> tuple[set[torch.dtype], list[float]]:
    """The dtypes of the first MLP projection's outputs during training, and the step losses."""
    seen: set[torch.dtype] = set()
    layer = policy.module.model.layers[0].mlp.down_proj
    handle = layer.register_forward_hook(lambda module, args, output: seen.add(output.dtype))
    result = train(config, policy, SUMS)
    handle.remove()
    return seen, result.train_losses


def test_bf16_autocasts_on_cpu_with_a_finite_loss_close_to_float32():
    config = lora_config(max_steps=3, lora=None)
    seen32, losses32 = dtypes_seen(tiny_policy(), config)
    seen16, losses16 = dtypes_seen(tiny_policy(), config.model_copy(update={"bf16": True}))
    assert seen32 == {torch.float32} and seen16 == {torch.bfloat16}
    assert all(torch.isfinite(torch.tensor(losses16)))
    # the same first batch on the same weights: bf16 rounding only
    assert losses16[0] == pytest.approx(losses32[0], rel=2e-2) and losses16[0] != losses32[0]
    # with LoRA too
    seen, losses = dtypes_seen(tiny_policy(), lora_config(max_steps=3, bf16=True))
    assert torch.bfloat16 in seen and all(torch.isfinite(torch.tensor(losses)))


def test_lora_on_a_tinylm_is_a_one_line_user_error():
    tokenizer = Tokenizer.from_texts(["0123456789+="])
    policy = TinyLM.create(
        TinyLMConfig(vocab_size=len(tokenizer), n_layer=1, d_model=32, n_head=2), tokenizer
    )
    examples = [Example(f"{a}+{b}=", str(a + b)) for a in range(3) for b in range(3)]
    with pytest.raises(UserError, match="LoRA needs a transformers policy") as error:
        train(lora_config(), policy, examples)
    assert "\n" not in str(error.value) and "lora=None" in str(error.value)
