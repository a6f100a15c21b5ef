from pathlib import Path

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
