"""Shared training machinery: tinylm (small causal LM), rl (episodes of segments, GRPO family), sft."""

from reasonlab.train import rl, sft, tinylm

__all__ = ["rl", "sft", "tinylm"]
