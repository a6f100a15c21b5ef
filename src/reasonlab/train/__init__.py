"""Shared training machinery: tinylm (small causal LM), rl (episodes of segments, GRPO family), sft."""
