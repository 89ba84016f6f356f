"""The headline of a run as a paper would state it: the best proposal found against the best
reference, the task's baseline and the mean of random samples of the design space, each with its
uncertainty and how many seeds (or samples) stand behind it.

Fitness is relative to the baseline (evaluator/fitness.py); the task's own quality metric is shown
beside it, averaged over the seeds that ran.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from archlab.insights.operators import operator_of
from archlab.insights.snapshot import RunSnapshot
from archlab.insights.records import RunSummary
from archlab.insights.summary import row_of
from evaluator.fitness import combine_seeds
from knowledge.records import Experiment

# the metric each task's fitness is computed from (evaluator/fitness.py), and which way is better
QUALITY = {"mqar": ("accuracy", "higher is better"), "bytelm": ("val_bpb", "lower is better")}
NOT_MEASURED = ("not measured in this run: no proposal was a fresh random genome "
                "(bench/bench_random_genomes.py measures random search on its own)")


@dataclass(frozen=True)
class HeadlineRow:
    label: str                    # best found, best reference, baseline, random samples (mean)
    id: str | None                # None for the random samples' mean
    name: str
    fitness: float | None
    stderr: float | None
    seeds: int                    # seeds behind the fitness (samples, for the random mean)
    quality: float | None         # the task's metric, mean over seeds
    quality_stderr: float | None
    params: int | None = None
    tokens_per_s: float | None = None
    latency_ms: float | None = None
    latency_length: int | None = None
    note: str = ""


@dataclass(frozen=True)
class Margin:
    """The best found minus another row, in fitness, with the two uncertainties combined."""

    against: str                  # the other row's label
    difference: float
    stderr: float

    @property
    def sigmas(self) -> float | None:
        return self.difference / self.stderr if self.stderr > 0 else None


@dataclass(frozen=True)
class Headline:
    metric: str                   # accuracy, val_bpb
    direction: str                # higher is better / lower is better
    rows: tuple[HeadlineRow, ...]

    @property
    def margins(self) -> tuple[Margin, ...]:
        best, others = self.rows[0], self.rows[1:]
        if best.fitness is None:
            return ()
        # a fitness's stderr already holds the baseline's spread, so against the baseline it is
        # the best's alone; against the others, adding both overstates it a little (conservative)
        return tuple(Margin(against=row.label, difference=best.fitness - row.fitness,
                            stderr=(best.stderr or 0.0) if row.label == "baseline"
                            else math.hypot(best.stderr or 0.0, row.stderr or 0.0))
                     for row in others if row.fitness is not None)


def seed_values(exp: Experiment, metric: str) -> list[float]:
    """The metric of every seed that ran ok (the first seed's eval.json when no seeds are listed)."""
    seeds = [s.get("metrics") or {} for s in exp.metrics.get("seeds") or []
             if isinstance(s, dict) and s.get("status") == "ok"]
    if not seeds:
        seeds = [exp.metrics.get("metrics") or {}]
    return [float(m[metric]) for m in seeds if isinstance(m.get(metric), (int, float))]


def _row(label: str, exp: Experiment | None, metric: str, note: str = "") -> HeadlineRow:
    if exp is None:
        return HeadlineRow(label=label, id=None, name="", fitness=None, stderr=None, seeds=0, quality=None,
                           quality_stderr=None, note=note or "none in this run")
    row = row_of(exp)
    values = seed_values(exp, metric)
    quality, spread = combine_seeds(values) if values else (None, None)
    return HeadlineRow(label=label, id=exp.id, name=exp.name, fitness=row.fitness, stderr=row.stderr,
                       seeds=row.seeds, quality=quality, quality_stderr=spread, params=row.params,
                       tokens_per_s=row.tokens_per_s, latency_ms=row.latency_ms, latency_length=row.latency_length,
                       note=note or (f"flagged: {row.flagged}" if row.flagged else ""))


def random_samples(snapshot: RunSnapshot, metric: str) -> HeadlineRow:
    """The mean over the run's fresh random genomes (uniform draws from the design space); failed
    draws are counted in the note, not in the mean."""
    drawn = [e for e in snapshot.proposals if e.finished and operator_of(e) == "random"]
    if not drawn:
        return _row("random samples (mean)", None, metric, NOT_MEASURED)
    scored = [e for e in drawn if e.fitness is not None and not e.fitness.flagged]
    fitness, spread = combine_seeds([e.fitness.value for e in scored]) if scored else (None, None)
    qualities = [sum(v) / len(v) for v in (seed_values(e, metric) for e in scored) if v]
    quality, quality_spread = combine_seeds(qualities) if qualities else (None, None)
    left_out = len(drawn) - len(scored)
    note = f"{len(scored)} of {len(drawn)} random genomes scored" + \
        (f"; the other {left_out} (failed or implausible) are left out of the mean" if left_out else "")
    return HeadlineRow(label="random samples (mean)", id=None, name=f"{len(scored)} samples", fitness=fitness,
                       stderr=spread, seeds=len(scored), quality=quality, quality_stderr=quality_spread, note=note)


def headline(snapshot: RunSnapshot, summary: RunSummary) -> Headline:
    """`summary` is the snapshot's run_summary (its best and best reference are the rows')."""
    metric, direction = QUALITY.get(snapshot.config.task, ("", ""))
    best = snapshot.by_id[summary.best.id] if summary.best else None
    reference = snapshot.by_id[summary.best_reference.id] if summary.best_reference else None
    return Headline(metric=metric, direction=direction, rows=(
        _row("best found", best, metric, "" if best else "no proposal has a fitness"),
        _row("best reference", reference, metric),
        _row("baseline", snapshot.baseline, metric),
        random_samples(snapshot, metric)))
