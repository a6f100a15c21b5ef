"""The ACE playbook: sections of itemized bullets with stable ids and helpful/harmful counters.

A bullet renders as `[<id>] helpful=<h> harmful=<k> :: <content>` under a `## <section>` header (the finance
repo's format); `parse_playbook` also accepts the AppWorld form `[<id>] <content>`. Ids are `<slug>-<NNNNN>`
with one global counter over all sections that is never reused (on load: next = max + 1). On disk the
playbook is JSON, written atomically.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reasonlab.errors import UserError
from reasonlab.runs import atomic_write_json
from reasonlab.systems.ace import prompts

__all__ = [
    "BULLET_ID_PATTERN",
    "DEFAULT_SECTIONS",
    "Bullet",
    "Playbook",
    "TokenCounter",
    "parse_playbook",
    "section_key",
    "section_slug",
]

TokenCounter = Callable[[str], int]

# the finance repo's seven sections, as snake_case keys (header lowercased, spaces -> _, & -> and)
DEFAULT_SECTIONS: tuple[str, ...] = (
    "strategies_and_insights",
    "formulas_and_calculations",
    "code_snippets_and_templates",
    "common_mistakes_to_avoid",
    "problem_solving_heuristics",
    "context_clues_and_indicators",
    "others",
)
_SLUGS = {
    "strategies_and_insights": "strat",
    "formulas_and_calculations": "calc",
    "code_snippets_and_templates": "code",
    "common_mistakes_to_avoid": "err",
    "problem_solving_heuristics": "heur",
    "context_clues_and_indicators": "ctx",
    "others": "misc",
}
BULLET_ID_PATTERN = re.compile(r"\[([a-z]{3,}-\d{5})\]")
_LINE = re.compile(r"^\s*\[([a-z]{3,}-\d{5})\]\s*(?:helpful=(\d+)\s+harmful=(\d+)\s*::\s*)?(.*)$")


def section_key(header: str) -> str:
    """`COMMON MISTAKES TO AVOID` -> `common_mistakes_to_avoid` (lowercase, & -> and, spaces -> _)."""
    text = header.strip().lower().replace("&", " and ")
    return "_".join(re.findall(r"[a-z0-9]+", text))


def section_slug(key: str) -> str:
    """Id prefix of a section: the fixed map, else the first 4 letters of one word or the initials of <= 5."""
    if key in _SLUGS:
        return _SLUGS[key]
    words = [w for w in key.split("_") if w] or ["misc"]
    slug = words[0][:4] if len(words) == 1 else "".join(w[0] for w in words[:5])
    # the id regex needs >= 3 letters
    return (slug + "xxx")[: max(3, len(slug))] if len(slug) < 3 else slug


@dataclass
class Bullet:
    """One playbook item. Neutral tags are not counted."""

    id: str
    section: str
    content: str
    helpful: int = 0
    harmful: int = 0

    def render(self, counters: bool = True) -> str:
        if counters:
            return f"[{self.id}] helpful={self.helpful} harmful={self.harmful} :: {self.content}"
        return f"[{self.id}] {self.content}"


@dataclass
class Playbook:
    """Ordered sections of bullets plus the global id counter. Mutated only through `reasonlab.systems.ace.delta`."""

    sections: list[str] = field(default_factory=lambda: list(DEFAULT_SECTIONS))
    bullets: list[Bullet] = field(default_factory=list)
    next_id: int = 1

    def __iter__(self) -> Iterator[Bullet]:
        return iter(self.bullets)

    def __len__(self) -> int:
        return len(self.bullets)

    def copy(self) -> Playbook:
        return copy.deepcopy(self)

    def get(self, bullet_id: str) -> Bullet | None:
        return next((b for b in self.bullets if b.id == bullet_id), None)

    @property
    def ids(self) -> list[str]:
        return [b.id for b in self.bullets]

    def new_id(self, section: str) -> str:
        """Consume the next global id for a bullet of `section`."""
        bullet_id = f"{section_slug(section)}-{self.next_id:05d}"
        self.next_id += 1
        return bullet_id

    def add(self, section: str, content: str) -> Bullet:
        """Append a bullet at the end of its section (unknown sections become `others`)."""
        if section not in self.sections:
            section = "others" if "others" in self.sections else self.sections[-1]
        bullet = Bullet(self.new_id(section), section, " ".join(content.split()))
        last = max((i for i, b in enumerate(self.bullets) if b.section == section), default=None)
        if last is None:
            order = self.sections.index(section)
            last = max((i for i, b in enumerate(self.bullets) if self.sections.index(b.section) < order), default=-1)
        self.bullets.insert(last + 1, bullet)
        return bullet

    def render(self, counters: bool = True, empty: str = prompts.EMPTY_CONTEXT) -> str:
        """The text the LLM sees: non-empty sections under `## header`, one bullet per line."""
        blocks = []
        for section in self.sections:
            lines = [b.render(counters) for b in self.bullets if b.section == section]
            if lines:
                blocks.append("\n".join([f"## {section}", *lines]))
        return "\n\n".join(blocks) if blocks else empty

    def tokens(self, count: TokenCounter) -> int:
        return count(self.render()) if self.bullets else 0

    def stats(self) -> dict[str, Any]:
        """The statistics the Curator sees (the finance repo's definitions)."""
        by_section = {}
        for section in self.sections:
            items = [b for b in self.bullets if b.section == section]
            if items:
                by_section[section] = {"count": len(items), "helpful": sum(b.helpful for b in items),
                                       "harmful": sum(b.harmful for b in items)}
        return {
            "total_bullets": len(self.bullets),
            "high_performing": sum(b.helpful > 5 and b.harmful < 2 for b in self.bullets),
            "problematic": sum(b.harmful >= b.helpful and b.harmful > 0 for b in self.bullets),
            "unused": sum(b.helpful == 0 and b.harmful == 0 for b in self.bullets),
            "by_section": by_section,
        }

    def to_dict(self) -> dict[str, Any]:
        return {"sections": list(self.sections), "next_id": self.next_id, "bullets": [asdict(b) for b in self.bullets]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Playbook:
        bullets = [Bullet(**b) for b in data.get("bullets", [])]
        sections = list(data.get("sections") or DEFAULT_SECTIONS)
        sections += [b.section for b in bullets if b.section not in sections]
        return cls(sections=list(dict.fromkeys(sections)), bullets=bullets,
                   next_id=max(int(data.get("next_id", 1)), _max_number(bullets) + 1))

    def save(self, path: str | Path) -> None:
        """Write JSON atomically (a killed process never leaves a half-written playbook)."""
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> Playbook:
        """Read a playbook JSON file, or a rendered text playbook (`.md`/`.txt`)."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"playbook {path} does not exist: pass a playbook.json written by `reasonlab ace adapt`")
        text = path.read_text()
        if path.suffix in (".md", ".txt"):
            return parse_playbook(text)
        try:
            return cls.from_dict(json.loads(text))
        except (json.JSONDecodeError, TypeError, KeyError) as err:
            raise UserError(f"playbook {path} is not a valid playbook JSON ({err}): pass a file written by ace adapt") from None


def _max_number(bullets: list[Bullet]) -> int:
    return max((int(b.id.rsplit("-", 1)[1]) for b in bullets), default=0)


def parse_playbook(text: str) -> Playbook:
    """Parse rendered text back into a Playbook (with or without counters); the id counter resumes at max + 1."""
    playbook = Playbook(sections=[], bullets=[])
    section = "others"
    for line in text.splitlines():
        if line.startswith("## "):
            section = section_key(line[3:])
            if section not in playbook.sections:
                playbook.sections.append(section)
            continue
        match = _LINE.match(line)
        if match:
            if section not in playbook.sections:
                playbook.sections.append(section)
            bullet_id, helpful, harmful, content = match.groups()
            playbook.bullets.append(Bullet(bullet_id, section, content.strip(), int(helpful or 0), int(harmful or 0)))
    if "others" not in playbook.sections:
        playbook.sections.append("others")
    playbook.next_id = _max_number(playbook.bullets) + 1
    return playbook
