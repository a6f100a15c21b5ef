from pathlib import Path

import pytest

import reasonlab.systems.trm as trm
from reasonlab.demo import discover_demos
from reasonlab.systems.trm.experiment import ARMS, EXPERIMENT, arm_config


def test_public_api_is_pinned():
    assert sorted(trm.__all__) == sorted([
        "EMA", "AdamATan2", "Carry", "ModelConfig", "RecursiveReasoner", "SignSGD", "SolveResult",
        "SupervisionConfig", "TRMTrainConfig", "deep_supervision_reference", "eval_checkpoint", "evaluate",
        "load_checkpoint", "load_model", "solve_puzzle", "stablemax_cross_entropy", "supervision_step",
        "train", "trm_loss",
    ])
    for name in trm.__all__:
        assert getattr(trm, name) is not None


def test_the_quick_experiment_is_registered_as_a_demo():
    demos = discover_demos()
    assert "trm" in demos and callable(demos["trm"].run)


def test_experiment_arms_share_the_network_and_differ_only_in_recursion_and_supervision():
    from reasonlab.systems.trm.model import RecursiveReasoner

    configs = {arm: arm_config(arm, 0, 10.0, "runs") for arm in ARMS}
    sizes = {
        arm: RecursiveReasoner(c.model_spec(8, 36, 1)).num_parameters() for arm, c in configs.items()
    }
    assert len(set(sizes.values())) == 1  # equal parameter count
    assert (configs["trm"].T, configs["trm"].n, configs["trm"].n_sup) == (2, 3, EXPERIMENT["n_sup"])
    assert (configs["deep_supervision"].T, configs["deep_supervision"].n) == (1, 1)
    assert configs["neither"].n_sup == 1
    assert all(c.budget_clock == "process" and c.threads == 1 for c in configs.values())
    assert Path(configs["trm"].out) == Path("runs")


def test_experiment_cli_compares_at_equal_steps_or_equal_cpu_time(monkeypatch, capsys):
    import reasonlab.systems.trm.experiment as experiment

    calls = []
    monkeypatch.setattr(experiment, "run_experiment", lambda *args: calls.append(args) or {"arms": {}})
    experiment.main(["--preset", "nine", "--steps", "1500", "--seeds", "0"])
    _, seeds, budget_s, base, _ = calls[-1]
    assert seeds == (0,) and budget_s is None and base["max_steps"] == 1500 and (base["size"], base["givens"]) == (9, 28)
    assert experiment.NINE["max_steps"] == EXPERIMENT["max_steps"]  # the preset itself is untouched
    experiment.main(["--budget-s", "60"])
    assert calls[-1][2] == 60.0 and calls[-1][3] is experiment.EXPERIMENT
    with pytest.raises(SystemExit):
        experiment.main(["--steps", "0"])
    assert "--steps 0 must be at least 1" in capsys.readouterr().err
