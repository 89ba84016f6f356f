"""Which proposers and variation operators paid off: for each, how many proposals it made, how
many were scored, how many beat their parent and how many raised the best so far.

The offline researcher does not store its operator as a field; its motivation opens with a fixed
phrase per operator (prompts/offline_proposal.j2), which `operator_of` reads back. LLM and person
proposals have no operator: they are counted under their proposer alone.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass

from archlab.insights.snapshot import RunSnapshot
from archlab.insights.summary import fitness_over_time
from knowledge.records import Experiment

# the opening words of each operator's motivation in prompts/offline_proposal.j2
OFFLINE_OPENINGS = (("Fresh random genome", "random"), ("A person's idea", "idea"), ("Point mutation", "mutate"),
                    ("Crossover of", "crossover"), ("Move ", "toward_elites"))


@dataclass(frozen=True)
class OperatorStats:
    proposer: str                 # "offline", "llm:<model>", "person"
    operator: str                 # mutate, crossover, toward_elites, random, idea; "–" when it has none
    proposals: int                # finished proposals
    scored: int                   # with a fitness
    beat_parent: int              # fitness above the parent's (scored parents only)
    new_best: int                 # beat every reference and every proposal finished before it
    mean_gain: float | None       # mean fitness minus the parent's, over those with a scored parent

    @property
    def improvement_rate(self) -> float | None:
        """Share of finished proposals that beat their parent."""
        return self.beat_parent / self.proposals if self.proposals else None


def operator_of(exp: Experiment) -> str:
    """The variation operator behind a proposal ("other" for an offline motivation this archlab
    did not write, "–" for proposers without operators)."""
    if exp.proposer != "offline":
        return "–"
    opening = exp.motivation.lstrip()
    return next((name for prefix, name in OFFLINE_OPENINGS if opening.startswith(prefix)), "other")


def _gain(exp: Experiment, snapshot: RunSnapshot) -> float | None:
    parent = snapshot.by_id.get(exp.parent_id) if exp.parent_id else None
    if exp.fitness is None or exp.fitness.flagged or parent is None or parent.fitness is None:
        return None
    return exp.fitness.value - parent.fitness.value


def operator_stats(snapshot: RunSnapshot) -> tuple[OperatorStats, ...]:
    """One line per (proposer, operator), most proposals first."""
    raised = set()
    best = max((e.fitness.value for e in snapshot.references if e.fitness and not e.fitness.flagged), default=None)
    for point in fitness_over_time(snapshot):
        if point.best_so_far is not None and (best is None or point.best_so_far > best):
            raised.add(point.id)
            best = point.best_so_far
    groups: dict[tuple[str, str], list[Experiment]] = {}
    for exp in snapshot.proposals:
        if exp.finished:
            groups.setdefault((exp.proposer, operator_of(exp)), []).append(exp)
    found = []
    for (proposer, operator), members in groups.items():
        gains = [g for g in (_gain(e, snapshot) for e in members) if g is not None]
        found.append(OperatorStats(
            proposer=proposer, operator=operator, proposals=len(members),
            scored=sum(e.fitness is not None for e in members), beat_parent=sum(g > 0 for g in gains),
            new_best=sum(e.id in raised for e in members), mean_gain=statistics.fmean(gains) if gains else None))
    return tuple(sorted(found, key=lambda s: (-s.proposals, s.proposer, s.operator)))
