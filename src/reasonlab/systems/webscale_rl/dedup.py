"""Near-duplicate removal with MinHash (datasketch): over documents before stage 1 and over QA pairs at the end.

Absent from the paper and its code (spec section 7: personas of one document yield near-identical QA); the spec's
engine section adds it, as datatrove and NeMo Curator do. A text becomes the set of its word n-gram shingles, a
seeded MinHash signature estimates Jaccard similarity, and MinHashLSH proposes candidates, each confirmed by its
estimated Jaccard before the later item is dropped. The confirmation makes false candidates cheap, so the LSH bands
are tuned for recall (datasketch's default weighs misses and false candidates equally, and then finds only ~40% of
pairs right at the threshold; we weigh misses 0.9, finding ~87%). Items are seen in order; the first of a group is
kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from datasketch import MinHash, MinHashLSH

from reasonlab.errors import UserError
from reasonlab.systems.webscale_rl.config import DedupConfig
from reasonlab.systems.webscale_rl.records import Record, StageOutput, rejection

__all__ = ["NearDuplicateIndex", "dedup_stage", "minhash", "near_duplicates", "shingles"]

_WORD = re.compile(r"\w+")
# (false candidate, missed duplicate) weights of the LSH band choice: misses cost more, candidates are confirmed
_LSH_WEIGHTS = (0.1, 0.9)


def shingles(text: str, n: int) -> set[str]:
    """The word n-grams of the lower-cased text; a text of fewer than n words is one shingle of all its words.

    >>> sorted(shingles("The cat sat on the mat", 3))
    ['cat sat on', 'on the mat', 'sat on the', 'the cat sat']
    >>> shingles("Hello, world!", 3)
    {'hello world'}
    """
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return {" ".join(words)}
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


def minhash(text: str, config: DedupConfig) -> MinHash:
    """The seeded MinHash signature of the text's shingles (identical across runs and processes)."""
    signature = MinHash(num_perm=config.num_perm, seed=config.seed)
    signature.update_batch([shingle.encode("utf-8") for shingle in sorted(shingles(text, config.shingle_words))])
    return signature


class NearDuplicateIndex:
    """The items kept so far; `add` answers whether a new item duplicates one of them (and keeps it if not)."""

    def __init__(self, config: DedupConfig) -> None:
        self.config = config
        try:
            self._lsh = MinHashLSH(threshold=config.threshold, num_perm=config.num_perm, weights=_LSH_WEIGHTS)
        except ValueError as error:
            raise UserError(f"dedup.threshold={config.threshold} with dedup.num_perm={config.num_perm} leaves "
                            f"MinHashLSH no valid bands ({error}): lower the threshold or raise num_perm") from None
        self._signatures: dict[str, MinHash] = {}
        self._order: dict[str, int] = {}
        self._seen: set[str] = set()

    def __len__(self) -> int:
        return len(self._signatures)

    def add(self, item_id: str, text: str) -> str | None:
        """The id of the earliest kept item this one duplicates, or None (and then this one is kept)."""
        if item_id in self._seen:
            raise ValueError(f"id {item_id!r} given twice to near-duplicate removal")
        self._seen.add(item_id)
        signature = minhash(text, self.config)
        # LSH candidates can fall below the threshold: confirm each with its estimated Jaccard
        matches = [kept for kept in self._lsh.query(signature)
                   if signature.jaccard(self._signatures[kept]) >= self.config.threshold]
        if matches:
            return min(matches, key=self._order.__getitem__)
        self._lsh.insert(item_id, signature)
        self._signatures[item_id] = signature
        self._order[item_id] = len(self._order)
        return None


def near_duplicates(items: Sequence[tuple[str, str]], config: DedupConfig) -> dict[str, str]:
    """For `(id, text)` items in order: id -> id of the earlier kept item it duplicates (kept items are absent)."""
    index = NearDuplicateIndex(config)
    duplicates: dict[str, str] = {}
    for item_id, text in items:
        kept = index.add(item_id, text)
        if kept is not None:
            duplicates[item_id] = kept
    return duplicates


def dedup_stage(records: Sequence[Record], text_of: Callable[[Record], str], id_of: Callable[[Record], str],
                config: DedupConfig, stage: str) -> StageOutput:
    """Keep the first of each group of near-duplicate records; the others are rejected as "near-duplicate"."""
    duplicates = near_duplicates([(id_of(record), text_of(record)) for record in records], config)
    output = StageOutput()
    for record in records:
        kept = duplicates.get(id_of(record))
        if kept is None:
            output.kept.append(record)
        else:
            output.rejected.append(rejection(id_of(record), stage, "near-duplicate", f"duplicates {kept}"))
    return output
