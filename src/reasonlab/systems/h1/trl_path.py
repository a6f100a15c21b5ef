"""The same h1 chains and reward on TRL's GRPOTrainer, for users who train real models at scale.

TRL runs one GRPOTrainer per curriculum stage on the same model (the weights carry over between stages;
TRL rebuilds its optimizer per trainer, a deviation from the paper's single optimizer). Settings follow
Dr.GRPO as the spec gives them: `loss_type="dr_grpo"`, `scale_rewards="none"`, `beta=0`.
Multi-GPU: run the same script under `accelerate launch`; vLLM generation: `use_vllm=True` in the config.

    stages = {h: make_chains(atoms, h, 512, seed=h) for h in range(1, 6)}
    train_curriculum_with_trl(model, tokenizer, stages, lambda h: trl_grpo_config(f"out/h{h}", max_steps=200))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from reasonlab.tasks.arithmetic import numeric_reward

__all__ = ["chain_reward", "train_curriculum_with_trl", "trl_dataset", "trl_grpo_config"]


def trl_dataset(chains: Sequence[Any]) -> Any:
    """A `datasets.Dataset` with 'prompt', 'solution' and 'depth' columns (TRL passes extra columns to rewards)."""
    from datasets import Dataset

    return Dataset.from_list([{"prompt": c.prompt, "solution": str(c.answer), "depth": c.depth} for c in chains])


def chain_reward(completions: list[Any], solution: list[str], **kwargs: Any) -> list[float | None]:
    """TRL reward function: exact final-answer match; completions may be text or chat messages.

    >>> chain_reward(["so \\\\boxed{1,200}", [{"role": "assistant", "content": "ans = 5"}]], ["1200", "6"])
    [1.0, 0.0]
    """
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [numeric_reward(text, answer) for text, answer in zip(texts, solution, strict=True)]


def trl_grpo_config(output_dir: str, **overrides: Any) -> Any:
    """A `trl.GRPOConfig` with h1's Dr.GRPO settings (G=8, T=1, beta 0, no std scaling); overrides win."""
    import trl

    settings: dict[str, Any] = {
        "output_dir": output_dir,
        "loss_type": "dr_grpo",
        "scale_rewards": "none",
        "beta": 0.0,
        "num_generations": 8,
        "temperature": 1.0,
        "learning_rate": 1e-6,
        "max_completion_length": 3072,
        "report_to": [],
        "save_strategy": "no",
    }
    settings.update(overrides)
    return trl.GRPOConfig(**settings)


def train_curriculum_with_trl(
    model: Any,
    tokenizer: Any,
    stages: dict[int, Sequence[Any]],
    make_args: Callable[[int], Any],
) -> list[Any]:
    """Train `model` on each depth's chains in order with TRL's GRPOTrainer; returns the trainers' log histories."""
    import trl

    histories = []
    for depth in sorted(stages):
        trainer = trl.GRPOTrainer(
            model=model,
            reward_funcs=chain_reward,
            args=make_args(depth),
            train_dataset=trl_dataset(stages[depth]),
            processing_class=tokenizer,
        )
        trainer.train()
        model = trainer.model
        histories.append(trainer.state.log_history)
    return histories
