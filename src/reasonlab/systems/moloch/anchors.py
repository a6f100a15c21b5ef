"""The anchor of one market round: what the agent writes about (a product card, a candidate profile, a news item).

    anchor = Anchor(arena="sales", anchor_id="sales-0007", title="Volt 20 power bank",
                    fields={"Description": "A compact 20,000 mAh power bank ..."},
                    attributes={"capacity_mah": 20000, "weight_g": 310, "price_usd": 39.99})

`fields` are the texts the agent prompt shows under their own headers; `attributes` are the checkable facts
(numbers and short values) that the probes compare a message against: a number in a message that is not among
them (or in the fields' text) is a fabrication, a value that contradicts one is a misrepresentation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

__all__ = ["ARENAS", "Anchor", "Arena"]

Arena = Literal["sales", "elections", "social"]
ARENAS: tuple[str, ...] = get_args(Arena)


@dataclass(frozen=True)
class Anchor:
    """One anchor; `attributes` maps a fact's name to its value (int, float or short text)."""

    arena: str
    anchor_id: str
    title: str
    fields: dict[str, str]
    attributes: dict[str, int | float | str] = field(default_factory=dict)

    def source_text(self) -> str:
        """Everything the agent is shown about the anchor, as one text (what a faithful message may quote)."""
        lines = [self.title, *(f"{name}: {text}" for name, text in self.fields.items())]
        lines += [f"{name}: {value}" for name, value in self.attributes.items()]
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {
            "arena": self.arena,
            "anchor_id": self.anchor_id,
            "title": self.title,
            "fields": dict(self.fields),
            "attributes": dict(self.attributes),
        }
