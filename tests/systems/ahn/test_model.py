"""The AHN student around a tinylm: exact equalities with sinks + SWA and with the teacher, decode == parallel,
a decode cache whose size does not grow with the length."""

from __future__ import annotations

import pytest
import torch

from reasonlab.errors import UserError
from reasonlab.systems.ahn.model import AHNStudent, window_mask
from reasonlab.train.tinylm import TinyLMConfig, TinyTransformer

KINDS = ["deltanet", "gdn", "mamba2"]


def base_model(seed: int = 0) -> TinyTransformer:
    torch.manual_seed(seed)
    model = TinyTransformer(TinyLMConfig(vocab_size=40, n_layer=2, n_head=2, d_model=32, context_length=64))
    return model.eval()


def teacher_logits(model: TinyTransformer, idx: torch.Tensor) -> torch.Tensor:
    B, L = idx.shape
    positions = torch.arange(L).expand(B, L)
    causal = torch.ones(L, L, dtype=torch.bool).tril()[None, None]
    return model(idx, positions, causal)


def randomise_outputs(student: AHNStudent, seed: int = 1) -> None:
    """Give the zero-initialised memory outputs some weight, so the memory matters."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in student.memories.parameters():
            if parameter.dim() >= 2:
                parameter.copy_(0.3 * torch.randn(parameter.shape, generator=generator))


def test_window_mask_alignment():
    mask = window_mask(10, sinks=2, window=3)[0, 0]
    assert mask[9].nonzero().flatten().tolist() == [0, 1, 7, 8, 9]  # sinks, then t-2 .. t
    assert mask[4].nonzero().flatten().tolist() == [0, 1, 2, 3, 4]  # within the budget T = 5: everything
    assert mask[5].nonzero().flatten().tolist() == [0, 1, 3, 4, 5]  # token 2 evicted at t = T


@pytest.mark.parametrize("kind", KINDS)
def test_zero_initialised_student_equals_sinks_and_swa_exactly(kind):
    student = AHNStudent(base_model(), kind=kind, sinks=2, window=5)
    idx = torch.randint(0, 40, (2, 23))
    with torch.no_grad():
        assert torch.equal(student(idx), student(idx, use_memory=False))
        randomise_outputs(student)
        assert not torch.allclose(student(idx), student(idx, use_memory=False))


@pytest.mark.parametrize("kind", KINDS)
def test_student_with_the_budget_covering_the_sequence_equals_the_teacher(kind):
    model = base_model()
    student = AHNStudent(model, kind=kind, sinks=2, window=30)
    randomise_outputs(student)
    idx = torch.randint(0, 40, (2, 32))
    with torch.no_grad():
        torch.testing.assert_close(student(idx), teacher_logits(model, idx), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("sinks", "window"), [(2, 5), (0, 4)])
def test_token_by_token_decode_equals_the_parallel_forward(kind, sinks, window):
    student = AHNStudent(base_model(), kind=kind, sinks=sinks, window=window)
    randomise_outputs(student)
    idx = torch.randint(0, 40, (2, 19))
    with torch.no_grad():
        parallel = student(idx)
    cache = student.new_cache(batch_size=2)
    stepped = []
    for position in range(idx.shape[1]):
        logits, cache = student.step(idx[:, position], cache)
        stepped.append(logits)
    torch.testing.assert_close(torch.stack(stepped, dim=1), parallel, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("prefix", [3, 7, 12])  # inside the budget, exactly at it, past it
def test_prefill_then_decode_equals_the_parallel_forward(kind, prefix):
    student = AHNStudent(base_model(), kind=kind, sinks=2, window=5)
    randomise_outputs(student)
    idx = torch.randint(0, 40, (2, 21))
    with torch.no_grad():
        parallel = student(idx)
    prefilled, cache = student.prefill(idx[:, :prefix])
    stepped = [prefilled]
    for position in range(prefix, idx.shape[1]):
        logits, cache = student.step(idx[:, position], cache)
        stepped.append(logits[:, None])
    torch.testing.assert_close(torch.cat(stepped, dim=1), parallel, rtol=1e-4, atol=1e-4)


def test_decoding_without_the_memory_is_sinks_and_swa_and_its_cache_holds_keys_and_values_only():
    student = AHNStudent(base_model(), kind="gdn", sinks=2, window=5)
    randomise_outputs(student)
    idx = torch.randint(0, 40, (2, 17))
    with torch.no_grad():
        parallel = student(idx, use_memory=False)
    prefilled, cache = student.prefill(idx[:, :9], use_memory=False)
    stepped = [prefilled]
    for position in range(9, 17):
        logits, cache = student.step(idx[:, position], cache)
        stepped.append(logits[:, None])
    torch.testing.assert_close(torch.cat(stepped, dim=1), parallel, rtol=1e-4, atol=1e-4)
    assert cache.nbytes() == sum(layer.keys.nbytes + layer.values.nbytes for layer in cache.layers)
    assert all(layer.state is None for layer in cache.layers)


def test_the_cache_keeps_write_gates_not_hidden_states():
    student = AHNStudent(base_model(), kind="gdn", sinks=2, window=5)
    _, cache = student.prefill(torch.randint(0, 40, (1, 12)))
    layer = cache.layers[0]
    assert layer.gates.shape == (1, 2, 7, 2)  # (B, H, s + W, beta and decay)
    with_state = layer.keys.nbytes + layer.values.nbytes + layer.gates.nbytes + layer.state.nbytes
    assert cache.nbytes() == 2 * with_state


def test_cache_size_does_not_grow_with_the_length():
    student = AHNStudent(base_model(), kind="gdn", sinks=2, window=5)
    cache = student.new_cache()
    sizes = []
    for position in range(40):
        _, cache = student.step(torch.tensor([position % 40]), cache)
        sizes.append(cache.nbytes())
    assert len(set(sizes[7:])) == 1  # constant once the memory state exists (from t = T on)


def test_only_ahn_parameters_train_and_bad_budgets_are_errors():
    student = AHNStudent(base_model(), kind="deltanet", sinks=2, window=5)
    trainable = {n for n, p in student.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("memories.") for n in trainable)
    with pytest.raises(UserError, match="window"):
        student.set_budget(2, 0)


def test_saving_and_loading_the_ahn_parameters_round_trips_and_checks_the_base(tmp_path):
    from reasonlab.systems.ahn.model import load_ahn, save_ahn

    trained = AHNStudent(base_model(), kind="gdn", sinks=2, window=5)
    randomise_outputs(trained)
    path = save_ahn(trained, tmp_path / "ahn.pt")
    fresh = load_ahn(AHNStudent(base_model(), kind="gdn", sinks=2, window=5), path)
    idx = torch.randint(0, 40, (1, 20))
    with torch.no_grad():
        assert torch.equal(fresh(idx), trained(idx))
    assert torch.load(path, weights_only=True)["parameters"].keys() == dict(trained.memories.named_parameters()).keys()
    with pytest.raises(UserError, match="holds a gdn memory"):
        load_ahn(AHNStudent(base_model(), kind="deltanet"), path)
    other = TinyTransformer(TinyLMConfig(vocab_size=40, n_layer=2, n_head=2, d_model=32, rope_base=500.0))
    with pytest.raises(UserError, match="another base model"):
        load_ahn(AHNStudent(other, kind="gdn"), path)
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(UserError, match="not a readable AHN checkpoint"):
        load_ahn(trained, tmp_path / "junk.pt")
    with pytest.raises(UserError, match="no AHN checkpoint"):
        load_ahn(trained, tmp_path / "missing.pt")
