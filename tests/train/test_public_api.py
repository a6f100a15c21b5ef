"""The public names of reasonlab.train, pinned."""

import reasonlab.train
from reasonlab.train import distill, distributed, losses, rl, rl_config, rollout, sft, tinylm, trl_grpo


def test_public_api():
    assert sorted(tinylm.__all__) == ["TinyLM", "TinyLMConfig", "TinyTransformer", "Tokenizer"]
    assert sorted(trl_grpo.__all__) == ["DR_GRPO_SETTINGS", "RewardFunction", "grpo_config", "train_grpo"]
    assert sorted(rollout.__all__) == ["Environment", "Episode", "Segment", "Step", "rollout", "tasks_for_iteration"]
    assert sorted(losses.__all__) == [
        "LossInputs",
        "episode_loss_reference",
        "episode_losses",
        "group_advantages",
        "statistic_units",
    ]
    assert sorted(rl_config.__all__) == ["LossType", "RLConfig", "check_loss_options"]
    assert sorted(distill.__all__) == ["DISTILL_CHECKPOINT", "DistillConfig", "forward_kl", "has_distill_checkpoint",
                                       "train_distill"]
    assert sorted(distributed.__all__) == [
        "all_reduce_max",
        "all_reduce_sum",
        "barrier",
        "init_distributed",
        "is_main_process",
    ]
    # rl.py holds the trainer and re-exports what systems import from it
    assert sorted(rl.__all__) == [
        "Environment",
        "Episode",
        "LossInputs",
        "LossType",
        "RLConfig",
        "RLTrainer",
        "Segment",
        "Step",
        "episode_loss_reference",
        "episode_losses",
        "group_advantages",
        "has_checkpoint",
        "rollout",
        "tasks_for_iteration",
        "train",
    ]
    assert sorted(sft.__all__) == [
        "CHECKPOINT_NAME",
        "Example",
        "LoRAConfig",
        "PromptTransform",
        "SFTConfig",
        "SFTResult",
        "add_lora",
        "completion_loss",
        "encode_example",
        "load_lora",
        "save_model",
        "train",
        "with_instruction",
    ]
    for module in (tinylm, rollout, losses, rl_config, distributed, rl, sft, trl_grpo, reasonlab.train):
        assert all(hasattr(module, name) for name in module.__all__)
    # the package re-exports the RL classes; `rl.train`, `sft.train` and `rl.rollout` stay qualified
    assert reasonlab.train.RLTrainer is rl.RLTrainer and reasonlab.train.Episode is rollout.Episode
    assert reasonlab.train.rollout is rollout and reasonlab.train.rl.rollout is rollout.rollout
