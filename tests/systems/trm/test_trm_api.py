import reasonlab.systems.trm as trm
from reasonlab.demo import discover_demos
from reasonlab.systems.trm.config import PRESETS


def test_public_api_is_pinned():
    assert sorted(trm.__all__) == sorted([
        "EMA", "AdamATan2", "Carry", "EvalResult", "ExperimentConfig", "ModelConfig", "PRESETS",
        "RecursiveReasoner", "SignSGD", "SolveResult", "SupervisionConfig", "TRMTrainConfig", "arc_pass_at_k",
        "deep_supervision_reference", "eval_checkpoint", "evaluate", "evaluate_split", "load_checkpoint",
        "load_model", "run_experiment", "solve_puzzle", "stablemax_cross_entropy", "supervision_step", "train",
        "trm_loss",
    ])
    for name in trm.__all__:
        assert getattr(trm, name) is not None


def test_the_quick_experiment_is_registered_as_a_demo():
    demos = discover_demos()
    assert "trm" in demos and callable(demos["trm"].run)


def test_train_is_the_function_and_the_run_of_record_is_the_first_preset():
    from reasonlab.systems.trm import training

    assert trm.train is training.train and callable(trm.train)
    assert next(iter(PRESETS)) == "main" and list(PRESETS["main"].arms) == ["trm", "deep_supervision", "neither"]
