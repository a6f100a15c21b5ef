"""`DelethinkConfig`: chunk size C, carryover m, iteration cap I (and the optional head of the first chunk).

Budget = C + (I - 1)(C - m): the first chunk gets C new tokens, every later one C - m, because its prompt
already holds m carried-over tokens. LongCoT is the same object with one chunk of the whole budget.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

from reasonlab.errors import UserError

__all__ = ["DelethinkConfig"]


class DelethinkConfig(BaseModel):
    """Delethink environment parameters; defaults are the paper's Delethink-24K (C=8192, m=4096, I=5)."""

    chunk_size: int = Field(8192, ge=1, description="C: context of one chunk (new tokens of the first chunk)")
    carryover: int = Field(4096, ge=0, description="m: tokens of the previous thinking carried into the next prompt")
    iterations: int = Field(5, description="I: cap on chunks per trace (raise it at test time to think longer)")
    head_tokens: int = Field(
        0, ge=0, description="first tokens of chunk 1 kept in every later prompt (official code: 100; paper: 0)"
    )

    @model_validator(mode="after")
    def _check(self) -> DelethinkConfig:
        if self.iterations < 1:
            raise UserError(f"iterations I={self.iterations} must be at least 1: a trace needs one chunk")
        if self.carryover >= self.chunk_size:
            raise UserError(
                f"carryover m={self.carryover} must be smaller than the chunk size C={self.chunk_size}: "
                "each later chunk generates C - m new tokens"
            )
        if self.head_tokens and self.head_tokens >= self.carryover:
            raise UserError(
                f"head_tokens={self.head_tokens} must be smaller than the carryover m={self.carryover}: "
                "the head is part of the carryover"
            )
        return self

    @classmethod
    def longcot(cls, budget: int) -> DelethinkConfig:
        """LongCoT as a special case: one chunk of `budget` new tokens, nothing carried."""
        return cls(chunk_size=budget, carryover=0, iterations=1)

    @property
    def budget(self) -> int:
        """Thinking-token budget C + (I - 1)(C - m)."""
        return self.chunk_size + (self.iterations - 1) * (self.chunk_size - self.carryover)

    def chunk_tokens(self, index: int) -> int:
        """New-token budget of chunk `index` (0-based): C for the first, C - m after."""
        return self.chunk_size if index == 0 else self.chunk_size - self.carryover

    def with_budget(self, budget: int) -> DelethinkConfig:
        """The same C and m with the fewest iterations whose budget reaches `budget` (test-time scaling)."""
        extra = max(budget - self.chunk_size, 0)
        step = self.chunk_size - self.carryover
        return self.model_copy(update={"iterations": 1 + -(-extra // step)})
