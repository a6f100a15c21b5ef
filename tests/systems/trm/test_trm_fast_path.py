"""The fast training step (inference-mode cycles, one y + x per cycle, a scaled token table, SDPA, a signed RoPE
table, fused RMSNorm, in-place inference buffers, the batch in cache-sized chunks) against the plain reference
model: equal values and gradients, float32, seeded tiny models."""

import pytest
import torch

from reasonlab.systems.trm.layers import Rotary, rms_norm, rms_norm_reference
from reasonlab.systems.trm.model import CACHE_BYTES, MIN_CHUNK_SAMPLES, ModelConfig, RecursiveReasoner
from reasonlab.systems.trm.supervision import SupervisionConfig, initial_carry, supervision_step

VARIANTS = {
    "trm-mlp": {"mixer": "mlp"},
    "trm-att": {"mixer": "attention"},
    "trm-att-one-step-gradient": {"mixer": "attention", "one_step_gradient": True},
    "hrm": {"arch": "hrm", "mixer": "attention", "T": 2, "n": 2},
}
# largest error over largest magnitude (fla's ratio): float32 rounding of SDPA and fused RMSNorm, carried through
# two supervision steps of T * (n + 1) recursive calls, stays near 2e-5 on an AVX-512 CPU; on an AVX2 one (AMD Zen 3)
# it reached 4.7e-5 on values and 1.02e-4 on gradients (the one-step-gradient variant's token embedding, summed over
# every position)
VALUE_RATIO = 2e-4
GRAD_RATIO = 5e-4
OUTPUTS = ("loss", "logits", "q_halt", "q_continue", "y", "z")


def assert_close(name: str, got: torch.Tensor, want: torch.Tensor, ratio: float) -> None:
    got, want = got.detach(), want.detach()
    error = float((got - want).abs().max()) / max(float(want.abs().max()), 1e-12)
    assert error <= ratio, f"{name}: error {error:.2e} of the largest magnitude exceeds {ratio:.0e}"


def _pair(tiny, **overrides) -> tuple[RecursiveReasoner, RecursiveReasoner]:
    """A fast model with random puzzle embeddings and the reference model holding the same weights."""
    fast = tiny(num_puzzle_ids=3, **overrides)
    with torch.no_grad():
        fast.puzzle_emb.weight.normal_()
    reference = RecursiveReasoner(fast.config, fast=False)
    reference.load_state_dict(fast.state_dict())
    return fast.train(), reference.train()


def _batch(size: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(7)
    inputs = torch.randint(1, 7, (size, 9), generator=generator)
    labels = torch.randint(1, 7, (size, 9), generator=generator)
    ids = torch.randint(0, 3, (size,), generator=generator)
    return inputs, labels, ids


def _grads(model: RecursiveReasoner) -> dict[str, torch.Tensor]:
    grads = {name: p.grad for name, p in model.named_parameters()}
    grads["puzzle_emb.local"] = model.puzzle_emb.local.grad
    return grads


def _supervision_steps(model: RecursiveReasoner, steps: int) -> list[dict[str, torch.Tensor]]:
    """`steps` carried supervision steps with backward (no optimizer: the weights stay shared); per step the
    outputs, the carry and every gradient."""
    inputs, labels, ids = _batch()
    carry = initial_carry(model, inputs, labels, ids)
    config = SupervisionConfig(n_sup=4, exploration=0.0)
    records = []
    for _ in range(steps):
        model.zero_grad(set_to_none=True)
        carry, loss, out = supervision_step(model, carry, inputs, labels, ids, config)
        loss.total.backward()
        records.append({"loss": loss.total.detach(), "logits": out.logits.detach(), "q_halt": out.q_halt.detach(),
                        "q_continue": out.q_continue.detach(), "y": carry.y, "z": carry.z, **_grads(model)})
    return records


@pytest.mark.parametrize("overrides", list(VARIANTS.values()), ids=list(VARIANTS))
def test_fast_step_equals_the_reference_in_values_and_gradients(tiny, overrides):
    fast, reference = _pair(tiny, **overrides)
    for step, (got, want) in enumerate(zip(_supervision_steps(fast, 2), _supervision_steps(reference, 2), strict=True)):
        for name in OUTPUTS:
            assert_close(f"step {step}: {name}", got[name], want[name], VALUE_RATIO)
        grads = [name for name in want if name not in OUTPUTS]
        assert all(want[name] is not None for name in grads), "every parameter gets a gradient"
        for name in grads:
            assert_close(f"step {step}: grad {name}", got[name], want[name], GRAD_RATIO)


@pytest.mark.parametrize("chunk", [1, 2])
@pytest.mark.parametrize("overrides", list(VARIANTS.values()), ids=list(VARIANTS))
def test_the_batch_run_in_chunks_equals_the_reference_in_values_and_gradients(tiny, overrides, chunk):
    # batch 3 in chunks of 1 or 2 samples (the last chunk shorter): the cache-blocked CPU path
    fast, reference = _pair(tiny, **overrides)
    fast.chunk_samples = chunk
    assert fast.samples_per_chunk(3, torch.device("cpu")) == chunk
    for step, (got, want) in enumerate(zip(_supervision_steps(fast, 2), _supervision_steps(reference, 2), strict=True)):
        for name in want:
            ratio = VALUE_RATIO if name in OUTPUTS else GRAD_RATIO
            assert_close(f"step {step}: {name}", got[name], want[name], ratio)


def test_chunks_are_sized_to_the_cache_on_cpu_only():
    paper = RecursiveReasoner(ModelConfig(vocab_size=11, seq_len=81, mixer="mlp", hidden_size=512, num_heads=8))
    small = RecursiveReasoner(ModelConfig(vocab_size=11, seq_len=81, mixer="attention", hidden_size=128, num_heads=4))
    # D=512: a sample's token-mixer activations (512 x 1024 floats, 2 MiB) leave room for fewer than
    # MIN_CHUNK_SAMPLES, so the batch runs whole; D=128: 10 samples' SwiGLU activations fit
    assert paper.activation_bytes_per_sample() == 4 * 512 * 2 * 512
    assert CACHE_BYTES // paper.activation_bytes_per_sample() < MIN_CHUNK_SAMPLES
    assert paper.samples_per_chunk(32, torch.device("cpu")) == 32
    assert small.activation_bytes_per_sample() == 4 * 97 * 2 * 512
    assert small.samples_per_chunk(32, torch.device("cpu")) == CACHE_BYTES // (4 * 97 * 2 * 512) == 10
    assert small.samples_per_chunk(2, torch.device("cpu")) == 2  # never more than the batch
    assert small.samples_per_chunk(32, torch.device("meta")) == 32  # accelerators take the whole batch


@pytest.mark.parametrize("mixer", ["mlp", "attention"])
def test_fast_forward_equals_the_reference_without_gradient(tiny, mixer):
    # evaluation runs under no_grad: the last cycle then runs outside inference mode on inference tensors
    fast, reference = _pair(tiny, mixer=mixer)
    inputs, _, ids = _batch()
    y, z = fast.initial_state(3)
    with torch.no_grad():
        got, want = fast.eval()(inputs, ids, y, z), reference.eval()(inputs, ids, y, z)
    assert_close("logits", got.logits, want.logits, VALUE_RATIO)
    assert_close("y", got.y, want.y, VALUE_RATIO)


def test_the_carry_of_the_fast_path_is_an_ordinary_tensor(tiny):
    # an inference tensor in the carry would refuse the in-place updates that training and evaluation make
    model = tiny(T=3, num_puzzle_ids=3).train()
    inputs, _, ids = _batch()
    y, z = model.initial_state(3)
    out = model(inputs, ids, y, z)
    assert not out.y.is_inference() and not out.z.is_inference()
    (out.logits.sum() + out.q_halt.sum()).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_fast_embedding_equals_the_reference_bit_for_bit(tiny):
    # sqrt(D) = 4 is a power of two here, so scaling before or after the lookup rounds alike; at other D the
    # two differ in the last bit, which the step test above bounds
    fast, reference = _pair(tiny)
    inputs, _, ids = _batch(4)
    assert torch.equal(fast.embed(inputs, ids), reference.embed(inputs, ids))


def test_signed_rope_table_equals_rotate_half():
    torch.manual_seed(42)
    rotary = Rotary(head_dim=8, seq_len=11)
    qk = torch.randn(2, 3, 2, 11, 8)  # (q and k, B, heads, S, hd)
    assert torch.equal(rotary(qk), rotary.reference(qk))


@pytest.mark.parametrize("shape", [(3, 13, 16), (2, 16, 97)], ids=["rows16", "odd97"])
def test_fused_rms_norm_equals_the_reference_in_values_and_gradients(shape):
    torch.manual_seed(42)
    x1 = (5 * torch.randn(shape)).requires_grad_(True)
    x2 = x1.detach().clone().requires_grad_(True)
    got, want = rms_norm(x1), rms_norm_reference(x2)
    assert_close("values", got, want, VALUE_RATIO)
    weights = torch.randn(shape)
    (got * weights).sum().backward()
    (want * weights).sum().backward()
    assert_close("grad", x1.grad, x2.grad, GRAD_RATIO)


def test_compiled_networks_keep_the_state_dict_values_and_gradients(tiny):
    model = tiny(T=2, n=2, num_puzzle_ids=3).train()
    keys = list(model.state_dict())
    inputs, _, ids = _batch()
    y, z = model.initial_state(3)
    model(inputs, ids, y, z).logits.sum().backward()
    want = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    # aot_eager traces forward and backward as inductor would, without a C++ compiler; the no-grad cycles run
    # the compiled network under inference_mode
    model.compile_networks(backend="aot_eager")
    assert list(model.state_dict()) == keys
    model(inputs, ids, y, z).logits.sum().backward()
    for name, grad in want.items():
        assert_close(f"grad {name}", dict(model.named_parameters())[name].grad, grad, GRAD_RATIO)
