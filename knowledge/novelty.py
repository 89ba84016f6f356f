"""Is a proposal new? Duplicates by normalised code hash, near-repeats by motivation similarity.

A researcher that re-proposes what was already tried wastes a whole evaluation; the loop asks
`MotivationNovelty.check` before coding (too close: re-propose) and `find_duplicates` after
coding (same program or same structure as an archived one).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from knowledge.codehash import code_hash, source_hashes, structure_hash

if TYPE_CHECKING:
    from knowledge.archive import Archive
    from knowledge.vectors import Query, VectorStore

__all__ = ["code_hash", "structure_hash", "source_hashes", "NearMotivation", "NoveltyVerdict",
           "MotivationNovelty", "DuplicateVerdict", "find_duplicates"]


class NearMotivation(NamedTuple):
    experiment_id: str
    name: str
    motivation: str
    score: float            # cosine similarity to the checked motivation


@dataclass(frozen=True)
class NoveltyVerdict:
    novel: bool
    nearest: list[NearMotivation]   # best first; the researcher is shown these when re-proposing
    threshold: float


class MotivationNovelty:
    """A motivation is novel when no archived one has cosine similarity >= threshold."""

    def __init__(self, store: VectorStore, threshold: float = 0.9, k: int = 5):
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"novelty threshold must be a cosine similarity in [0, 1], got {threshold}")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.store = store
        self.threshold = threshold
        self.k = k

    def check(self, motivation: Query, exclude: Sequence[str] = ()) -> NoveltyVerdict:
        """`exclude`: ids not to compare with, e.g. the experiment itself when it is re-checked
        after a resume (its own motivation may already be indexed)."""
        hits = self.store.nearest_motivations(motivation, k=self.k, exclude=exclude)
        nearest = [NearMotivation(h.experiment_id, h.name, h.motivation, h.score) for h in hits]
        novel = not nearest or nearest[0].score < self.threshold
        return NoveltyVerdict(novel=novel, nearest=nearest, threshold=self.threshold)


@dataclass(frozen=True)
class DuplicateVerdict:
    code_hash: str
    structure_hash: str
    same_code: list[str]        # ids of archived experiments running the same program
    same_structure: list[str]   # ids with the same program up to renaming (includes same_code)

    @property
    def duplicate(self) -> bool:
        return bool(self.same_structure)


def find_duplicates(archive: Archive, source: str, exclude: Sequence[str] = ()) -> DuplicateVerdict:
    """Archived experiments whose code equals `source` up to formatting, or up to renaming."""
    hashes = source_hashes(source)
    same_code = [e.id for e in archive.find_by_code_hash(hashes.code_hash) if e.id not in exclude]
    same_structure = [e.id for e in archive.find_by_structure_hash(hashes.structure_hash) if e.id not in exclude]
    return DuplicateVerdict(hashes.code_hash, hashes.structure_hash, same_code, same_structure)
