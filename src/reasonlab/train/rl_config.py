"""`RLConfig`: the hyperparameters of one RL run (`reasonlab.train.rl.train`), with the papers' defaults.

Papers: GRPO (DeepSeekMath, arXiv 2402.03300), Dr.GRPO (arXiv 2503.20783), GSPO (arXiv 2507.18071); dual-clip
PPO (arXiv 1912.09729); truncated importance sampling as in Delethink (arXiv 2510.06557).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from reasonlab.llm.base import SamplingParams
from reasonlab.trackers import TrackerName

__all__ = ["LossType", "RLConfig", "check_loss_options"]

LossType = Literal["grpo", "dr_grpo", "gspo"]


class RLConfig(BaseModel):
    """Hyperparameters of one RL run; defaults are the papers' unless a field says otherwise."""

    loss_type: LossType = Field(
        "grpo",
        description="grpo: (R-mean)/(std+eps), per-episode token mean; dr_grpo: R-mean, token sum / constant; "
        "gspo: (R-mean)/(std+eps), episode-level importance ratio and clipping",
    )
    iterations: int = Field(100, ge=1, description="RL iterations (rollout + update)")
    tasks_per_iteration: int = Field(16, ge=1, description="groups (distinct tasks) per iteration")
    group_size: int = Field(8, ge=1, description="G: episodes per task")
    max_segments: int = Field(
        1, ge=1, description="cap on segments per episode (Delethink I, mem-agent turns)"
    )
    sampling: SamplingParams = Field(
        default_factory=lambda: SamplingParams(temperature=1.0, max_tokens=256),
        description="rollout sampling; seeds are set per round by the engine, n is ignored",
    )
    learning_rate: float = Field(1e-6, gt=0, description="AdamW learning rate (Delethink, h1: 1e-6)")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    adam_betas: tuple[float, float] = Field((0.9, 0.999), description="AdamW betas")
    max_grad_norm: float | None = Field(1.0, gt=0, description="gradient-norm clip; None disables")
    optimizer_steps_per_iteration: int = Field(
        1, ge=1, description="fixed optimizer steps per iteration (Delethink: 2), whatever the row count"
    )
    micro_batch_size: int = Field(64, ge=1, description="rows per forward pass (gradient accumulation unit)")
    epsilon_low: float = Field(0.2, ge=0, description="PPO clip 1 - epsilon_low (GSPO paper: 3e-4)")
    epsilon_high: float = Field(
        0.2, ge=0, description="PPO clip 1 + epsilon_high (Delethink: 0.26; GSPO: 4e-4)"
    )
    dual_clip: float | None = Field(
        None,
        gt=1,
        description="dual-clip bound c for negative advantages, grpo and dr_grpo only (Delethink: 3)",
    )
    tis_cap: float | None = Field(
        None, gt=0, description="truncated importance weight min(pi_old / pi_rollout, cap) (Delethink: 2)"
    )
    beta: float = Field(0.0, ge=0, description="KL weight to the frozen reference (k3 estimator); 0 disables")
    advantage_epsilon: float = Field(1e-6, ge=0, description="eps in (R-mean)/(std+eps); TRL uses 1e-4")
    advantage_std: Literal["sample", "population"] = Field(
        "sample", description="std of a group: sample (Bessel, as TRL and verl) or population"
    )
    dr_grpo_norm: int | None = Field(
        None, ge=1, description="Dr.GRPO constant divisor; None: sampling.max_tokens * max_segments"
    )
    seed: int = Field(0, description="seeds data order and rollout sampling")
    checkpoint_every: int = Field(1, ge=1, description="iterations between checkpoints (needs a run)")
    resume: bool = Field(
        False, description="continue from the run's last checkpoint (an error when it has none)"
    )
    progress: bool = Field(True, description="show a progress bar")
    report_to: list[TrackerName] = Field(default_factory=list, description="trackers the run directory also "
                                         "reports to: tensorboard, mlflow, wandb (reasonlab.trackers)")

    @model_validator(mode="after")
    def _check(self) -> RLConfig:
        if self.loss_type != "gspo" and self.epsilon_low >= 1:
            raise ValueError(f"epsilon_low={self.epsilon_low} must be below 1 so that 1 - epsilon_low > 0")
        check_loss_options(self.loss_type, self.dual_clip)
        if not self.sampling.logprobs:
            raise ValueError(
                "sampling.logprobs=False: RL needs the rollout logprobs, leave sampling.logprobs on"
            )
        return self

    @property
    def episode_token_budget(self) -> int:
        return self.dr_grpo_norm or self.sampling.max_tokens * self.max_segments


def check_loss_options(loss_type: str, dual_clip: float | None) -> None:
    """Refuse option combinations the losses do not define (also for configs built with `model_copy`)."""
    if loss_type == "gspo" and dual_clip is not None:
        raise ValueError(
            f"dual_clip={dual_clip} caps token-level ratios (grpo, dr_grpo) and GSPO clips a sequence ratio: "
            "unset dual_clip for loss_type='gspo'"
        )
