"""The h1 curriculum on TRL's GRPOTrainer (`reasonlab.train.trl_grpo`), for users who train real models at scale.

Each curriculum stage is one `train_grpo` call on the same model (the weights carry over between stages;
TRL rebuilds its optimizer per stage, a deviation from the paper's single optimizer). Settings follow Dr.GRPO
as the spec gives them (`trl_grpo.grpo_config`), with the spec's lr 1e-6 and 3072 completion tokens.
Multi-GPU: run the same script under `accelerate launch`; vLLM generation: `use_vllm=True` in the config.

    stages = {h: make_chains(atoms, h, 512, seed=h) for h in range(1, 6)}
    train_curriculum_with_trl(load_llm("hf:PATH"), stages, lambda h: h1_grpo_config(f"out/h{h}", max_steps=200))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from reasonlab.tasks.arithmetic import numeric_reward
from reasonlab.train.trl_grpo import grpo_config, train_grpo

__all__ = ["chain_reward", "chain_rows", "h1_grpo_config", "train_curriculum_with_trl"]


def chain_rows(chains: Sequence[Any]) -> list[dict[str, Any]]:
    """Rows with 'prompt', 'solution' and 'depth' (TRL passes the columns other than the prompt to rewards)."""
    return [{"prompt": c.prompt, "solution": str(c.answer), "depth": c.depth} for c in chains]


def chain_reward(completions: list[Any], solution: list[str], **kwargs: Any) -> list[float | None]:
    """TRL reward function: exact final-answer match; completions may be text or chat messages.

    >>> chain_reward(["so \\\\boxed{1,200}", [{"role": "assistant", "content": "ans = 5"}]], ["1200", "6"])
    [1.0, 0.0]
    """
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [numeric_reward(text, answer) for text, answer in zip(texts, solution, strict=True)]


def h1_grpo_config(output_dir: str, **overrides: Any) -> Any:
    """`trl_grpo.grpo_config` (Dr.GRPO: G=8, T=1, beta 0, no std scaling) with the spec's lr 1e-6 and
    3072 completion tokens; overrides win."""
    return grpo_config(output_dir, **{"learning_rate": 1e-6, "max_completion_length": 3072, **overrides})


def train_curriculum_with_trl(
    policy: Any,
    stages: dict[int, Sequence[Any]],
    make_args: Callable[[int], Any],
    tokenizer: Any = None,
) -> list[list[dict[str, Any]]]:
    """Train `policy` (an hf policy, or a transformers model with its `tokenizer`) on each depth's chains in
    order; returns each stage's TRL log history."""
    return [train_grpo(policy, chain_rows(stages[depth]), chain_reward, make_args(depth), tokenizer)
            for depth in sorted(stages)]
