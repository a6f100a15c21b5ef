import pytest
import torch

from reasonlab.systems.trm.model import ModelConfig, RecursiveReasoner


@pytest.mark.parametrize(
    ("overrides", "millions"),
    [
        ({"vocab_size": 11, "seq_len": 81, "mixer": "attention"}, 6.83),  # "7M" TRM-Att
        ({"vocab_size": 11, "seq_len": 81, "mixer": "mlp"}, 5.03),  # "5M" TRM-MLP Sudoku
        ({"vocab_size": 12, "seq_len": 900, "mixer": "mlp"}, 18.80),  # "19M" TRM-MLP at L=900
        ({"vocab_size": 12, "seq_len": 900, "arch": "hrm", "num_layers": 4, "prefix_len": 1}, 27.28),  # HRM
    ],
    ids=["trm-att", "trm-mlp-sudoku", "trm-mlp-900", "hrm"],
)
def test_parameter_counts_match_the_paper(overrides, millions):
    with torch.device("meta"):  # count without allocating or initialising 27M weights
        model = RecursiveReasoner(ModelConfig(**overrides))
    assert model.num_parameters() / 1e6 == pytest.approx(millions, abs=0.006)


@pytest.mark.parametrize("mixer", ["attention", "mlp"])
def test_step_output_shapes_and_detached_state(mixer, tiny):
    model = tiny(mixer=mixer)
    inputs = torch.randint(1, 7, (4, 9))
    y, z = model.initial_state(4)
    assert y.shape == z.shape == (4, 12, 16)
    assert torch.equal(y[0, 0], model.y_init) and torch.equal(z[3, 11], model.z_init)
    out = model(inputs, torch.zeros(4, dtype=torch.long), y, z)
    assert out.logits.shape == (4, 9, 7)
    assert out.q_halt.shape == out.q_continue.shape == (4,)
    assert not out.y.requires_grad and not out.z.requires_grad
    assert out.logits.requires_grad
    # q head starts at weight 0, bias -5
    assert torch.allclose(out.q_halt, torch.full((4,), -5.0))


def _count_grad_calls(model, module):
    calls = []
    module.register_forward_hook(lambda m, i, o: calls.append(torch.is_grad_enabled()))
    y, z = model.initial_state(2)
    model(torch.randint(1, 7, (2, 9)), torch.zeros(2, dtype=torch.long), y, z)
    return calls


def test_only_the_last_of_T_cycles_runs_with_gradient(tiny):
    model = tiny(T=3, n=2)
    calls = _count_grad_calls(model, model.net)
    # T * (n + 1) = 9 calls; the last cycle's n + 1 = 3 are differentiable
    assert calls == [False] * 6 + [True] * 3


def test_one_step_gradient_ablation_and_hrm_differentiate_only_the_last_calls(tiny):
    model = tiny(T=3, n=2, one_step_gradient=True)
    assert _count_grad_calls(model, model.net) == [False] * 7 + [True] * 2
    hrm = tiny(arch="hrm", T=2, n=2)
    low, high = [], []
    hrm.low.register_forward_hook(lambda m, i, o: low.append(torch.is_grad_enabled()))
    hrm.high.register_forward_hook(lambda m, i, o: high.append(torch.is_grad_enabled()))
    y, z = hrm.initial_state(2)
    hrm(torch.randint(1, 7, (2, 9)), torch.zeros(2, dtype=torch.long), y, z)
    assert low == [False, False, False, True] and high == [False, True]


def test_gradient_of_the_last_cycle_equals_a_manual_detached_computation(tiny):
    model = tiny(T=2, n=2)
    inputs, ids = torch.randint(1, 7, (2, 9)), torch.zeros(2, dtype=torch.long)
    y, z = model.initial_state(2)
    out = model(inputs, ids, y, z)
    out.logits.sum().backward()
    auto = [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]
    model.zero_grad()
    # by hand: first cycle detached, second cycle differentiable
    x = model.embed(inputs, ids)
    with torch.no_grad():
        y1, z1 = model.latent_recursion(x, y, z, 2)
    y2, _ = model.latent_recursion(x, y1, z1, 2)
    model.lm_head(y2)[:, 3:].sum().backward()
    for a, p in zip(auto, model.parameters(), strict=True):
        b = p.grad if p.grad is not None else torch.zeros_like(p)
        torch.testing.assert_close(a, b)


def test_z_update_sees_x_and_y_update_does_not(tiny):
    model = tiny(T=1, n=1)
    seen = []
    model.net.register_forward_pre_hook(lambda m, args: seen.append(args[1]))
    inputs, ids = torch.randint(1, 7, (2, 9)), torch.zeros(2, dtype=torch.long)
    y, z = model.initial_state(2)
    model(inputs, ids, y, z)
    x = model.embed(inputs, ids)
    torch.testing.assert_close(seen[0], y + x)  # z = net(z, y + x)
    assert not torch.allclose(seen[1], seen[1] + x)  # sanity: x is non-zero
    # y = net(y, z_new): injection is the new z, without x
    new_z = model.net(z, y + x)
    torch.testing.assert_close(seen[1], new_z)


def test_puzzle_embedding_occupies_prefix_position_zero_scaled(tiny):
    model = tiny(num_puzzle_ids=3)
    with torch.no_grad():
        model.puzzle_emb.weight[2] = 1.0
    x = model.embed(torch.randint(1, 7, (2, 9)), torch.tensor([2, 0]))
    assert torch.allclose(x[0, 0], torch.full((16,), 4.0))  # sqrt(16) * 1
    assert torch.equal(x[1, 0], torch.zeros(16)) and torch.equal(x[:, 1:3], torch.zeros(2, 2, 16))
    assert "puzzle_emb.weight" not in dict(model.named_parameters())


def test_invalid_architecture_is_rejected(tiny):
    with pytest.raises(ValueError, match="arch must be"):
        tiny(arch="gru")
    with pytest.raises(ValueError, match="prefix_len"):
        tiny(prefix_len=0)
