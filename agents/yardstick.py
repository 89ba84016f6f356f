"""What a run's archive says about its own yardstick: pure functions over experiments.

Whether the cheap rung predicts the expensive one (rank correlation per pair of rungs, over the
candidates that ran on both), whether each zero-cost proxy predicts trained fitness, and which
candidates climb. archlab.insights.yardstick turns them into the figures that `archlab status`,
the report and the web app show.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Sequence

from evaluator.stats import Interval, Verdict, beats, kendall_tau, spearman_rho
from knowledge.records import Experiment, Fitness


def rung_fitness(exp: Experiment, budget: str, run_budget: str) -> float | None:
    """The experiment's fitness value at rung `budget`, or None if it did not run there (ok)."""
    entry = (exp.metrics.get("rungs") or {}).get(budget) or {}
    if entry.get("fitness"):
        return float(entry["fitness"]["value"])
    if budget == run_budget and exp.fitness is not None and exp.fitness.rung in ("", run_budget):
        return exp.fitness.value
    return None


def promoted(value: float, peers: Sequence[float], fraction: float) -> bool:
    """Is `value` among the top `fraction` of itself and its peers (at least one always climbs)?"""
    keep = max(1, math.ceil(fraction * (len(peers) + 1)))
    return sum(1 for p in peers if p > value) < keep


def rung_correlations(experiments: Sequence[Experiment], rungs: Sequence[str], run_budget: str) -> dict[str, Any]:
    """Per pair of rungs "a -> b": how many candidates ran on both and Kendall's tau of their fitness."""
    found = {}
    for low, high in combinations(rungs, 2):
        pairs = [(a, b) for exp in experiments
                 if (a := rung_fitness(exp, low, run_budget)) is not None
                 and (b := rung_fitness(exp, high, run_budget)) is not None]
        found[f"{low} -> {high}"] = {"candidates": len(pairs),
                                     "kendall": kendall_tau([p[0] for p in pairs], [p[1] for p in pairs])}
    return found


def proxies_of(exp: Experiment) -> dict[str, float]:
    """The zero-cost proxies the worker recorded for the experiment's first seed (eval.json metrics)."""
    found = ((exp.metrics.get("metrics") or {}).get("proxies")) or {}
    return {k: float(v) for k, v in found.items() if isinstance(v, (int, float))
            and math.isfinite(v)}


def archive_proxy_correlations(experiments: Sequence[Experiment]) -> dict[str, Any]:
    """Per proxy, over the evaluated experiments with a fitness: Spearman's rho and Kendall's tau of
    the proxy against trained fitness (positive: a higher proxy went with a fitter candidate)."""
    scored = [(proxies_of(e), e.fitness.value) for e in experiments
              if e.status == "ok" and e.fitness is not None and not e.fitness.flagged]
    names = sorted({name for proxies, _ in scored for name in proxies})
    found = {}
    for name in names:
        pairs = [(proxies[name], value) for proxies, value in scored if name in proxies]
        xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
        found[name] = {"candidates": len(pairs), "spearman": spearman_rho(xs, ys), "kendall": kendall_tau(xs, ys)}
    return found


@dataclass(frozen=True)
class Versus:
    """The best proposal against the best reference: "beats" only when the 95% interval of the
    difference excludes zero (evaluator.stats.beats), never from one seed."""

    best: Experiment
    reference: Experiment
    best_interval: Interval
    reference_interval: Interval
    verdict: Verdict


def _interval(fitness: Fitness) -> Interval:
    return Interval(fitness.value, fitness.stderr, fitness.seeds)


def best_against_references(experiments: Sequence[Experiment]) -> Versus | None:
    """None until a proposal and a reference both have a plausible fitness."""
    def fit(group: list[Experiment]) -> Experiment | None:
        scored = [e for e in group if e.fitness is not None and not e.fitness.flagged]
        return max(scored, key=lambda e: e.fitness.value, default=None)
    best = fit([e for e in experiments if e.proposer != "reference"])
    reference = fit([e for e in experiments if e.proposer == "reference"])
    if best is None or reference is None:
        return None
    mine, theirs = _interval(best.fitness), _interval(reference.fitness)
    return Versus(best, reference, mine, theirs, beats(mine, theirs))
