"""Shared training machinery: tinylm (small causal LM), RL over episodes of segments (GRPO family), SFT.

Modules: `tinylm`, `rollout` (episodes, environments, the batched engine), `losses` (GRPO / Dr.GRPO / GSPO),
`rl_config` (`RLConfig`), `rl` (`RLTrainer`, `train`), `distributed` (process group and collectives), `sft`,
`trl_grpo` (GRPO through TRL's trainer on a Hugging Face model, for GPUs).
The RL names are re-exported here; `rl.train`, `sft.train` and `rl.rollout` stay qualified.
"""

from reasonlab.train import distributed, losses, rl, rl_config, rollout, sft, tinylm, trl_grpo
from reasonlab.train.rl import (
    Environment,
    Episode,
    LossInputs,
    LossType,
    RLConfig,
    RLTrainer,
    Segment,
    Step,
    episode_loss_reference,
    episode_losses,
    group_advantages,
    has_checkpoint,
    tasks_for_iteration,
)

__all__ = [
    "Environment",
    "Episode",
    "LossInputs",
    "LossType",
    "RLConfig",
    "RLTrainer",
    "Segment",
    "Step",
    "distributed",
    "episode_loss_reference",
    "episode_losses",
    "group_advantages",
    "has_checkpoint",
    "losses",
    "rl",
    "rl_config",
    "rollout",
    "sft",
    "tasks_for_iteration",
    "tinylm",
    "trl_grpo",
]
