"""GRPO through TRL's GRPOTrainer on a Hugging Face model, for training real models at scale.

`reasonlab.train.rl` is our own engine (any `TrainablePolicy`, step-wise environments, CPU-sized runs); this
module hands single-turn prompts and a reward function to TRL instead, for its vLLM generation, DeepSpeed /
FSDP and multi-GPU support (`accelerate launch` runs the same script on several GPUs). The defaults are
Dr.GRPO's (Liu et al. 2025): `loss_type="dr_grpo"`, `scale_rewards="none"`, `beta=0`, G = 8, T = 1.

    args = grpo_config("out/grpo", max_steps=200, use_vllm=True)
    history = train_grpo(load_llm("hf:embedded"), [{"prompt": p, "solution": s} ...], my_reward, args)

A reward is TRL's plain function `(completions, **columns) -> list[float | None]`: every column of the rows
other than "prompt" reaches it as a keyword argument, one value per completion.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from reasonlab.errors import UserError

__all__ = ["DR_GRPO_SETTINGS", "RewardFunction", "grpo_config", "train_grpo"]

RewardFunction = Callable[..., list[float | None]]

DR_GRPO_SETTINGS: dict[str, Any] = {
    "loss_type": "dr_grpo",  # token sum over a constant, no length bias
    "scale_rewards": "none",  # A = R - mean: no division by the group's std
    "beta": 0.0,  # no KL term
    "num_generations": 8,  # G
    "temperature": 1.0,
    "report_to": [],
    "save_strategy": "no",
}


def grpo_config(output_dir: str, **overrides: Any) -> Any:
    """A `trl.GRPOConfig` with Dr.GRPO's settings (`DR_GRPO_SETTINGS`); `overrides` win."""
    import trl

    return trl.GRPOConfig(output_dir=output_dir, **{**DR_GRPO_SETTINGS, **overrides})


def train_grpo(
    policy: Any,
    rows: Sequence[Mapping[str, Any]],
    reward: RewardFunction | Sequence[RewardFunction],
    args: Any,
    tokenizer: Any = None,
) -> list[dict[str, Any]]:
    """Train `policy` with TRL's GRPOTrainer on `rows` (each with a "prompt") under `args` (`grpo_config`);
    returns TRL's log history. `policy` is an hf-backend policy (`load_llm("hf:...")`, trained in place) or a
    transformers model with its `tokenizer`."""
    import trl
    from datasets import Dataset

    model, tokenizer = _model_and_tokenizer(policy, tokenizer)
    if not rows or any("prompt" not in row for row in rows):
        raise UserError("train_grpo: every row needs a 'prompt' (and the columns the reward reads): pass "
                        "[{'prompt': ..., 'solution': ...}, ...]")
    trainer = trl.GRPOTrainer(
        model=model,
        reward_funcs=list(reward) if isinstance(reward, Sequence) else reward,
        args=args,
        train_dataset=Dataset.from_list([dict(row) for row in rows]),
        processing_class=tokenizer,
    )
    trainer.train()
    if trainer.model is not model:
        _replace_module(policy, trainer.model)
    return list(trainer.state.log_history)


def _model_and_tokenizer(policy: Any, tokenizer: Any) -> tuple[Any, Any]:
    """The transformers model and tokenizer behind `policy`."""
    from reasonlab.llm.hf import HFPolicy

    if isinstance(policy, HFPolicy):
        return policy.module, tokenizer if tokenizer is not None else policy.tokenizer
    if tokenizer is None:
        raise UserError(f"train_grpo: a {type(policy).__name__} needs its tokenizer: pass tokenizer=..., or an "
                        f"hf policy from load_llm('hf:PATH')")
    return policy, tokenizer


def _replace_module(policy: Any, model: Any) -> None:
    """Point an hf policy at the model TRL trained (TRL may wrap or copy it)."""
    from reasonlab.llm.hf import HFPolicy

    if isinstance(policy, HFPolicy):
        policy.use_module(model)
