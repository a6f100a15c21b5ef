"""The public names of reasonlab.systems.inoculation resolve to their objects; the quick demo is registered."""

import reasonlab.systems.inoculation as inoculation
from reasonlab.demo import discover_demos


def test_public_api_resolves_and_train_is_the_function():
    for name in inoculation.__all__:
        assert getattr(inoculation, name) is not None, name
    from reasonlab.systems.inoculation.training import train

    assert inoculation.train is train
    assert {"PRESETS", "TrainConfig", "ExperimentConfig", "train", "evaluate", "elicit", "run_experiment",
            "run_toy", "build_setting", "ArmPrompts", "ToyConfig"} <= set(inoculation.__all__)


def test_quick_demo_is_registered():
    assert "inoculation" in discover_demos()
