"""Fitness of an experiment relative to the run's baseline, with a seed cascade.

Every candidate is evaluated once; one that beats the baseline and every proposal so far (a reference:
the best so far) is re-evaluated with `cascade_seeds` more seeds, and the baseline always is, so
fitness carries an honest uncertainty. The arithmetic itself is in `evaluator.fitness` (pure functions).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from evaluator.fitness import combine_seeds, fitness, implausible
from evaluator.records import EvalResult
from knowledge.records import Experiment, Fitness

from agents.lab import Lab
from agents.suite_scoring import score_suite


@dataclass
class Scored:
    results: list[EvalResult]
    metrics: dict[str, Any]   # the first seed's eval.json, plus every seed's task metrics
    fitness: Fitness | None


def seed_metrics(exp: Experiment) -> list[dict[str, Any]]:
    return [entry["metrics"] for entry in exp.metrics.get("seeds", []) if entry["status"] == "ok"]


def cascade_bar(lab: Lab, exp: Experiment) -> float:
    """The fitness a first seed must beat to earn `cascade_seeds` more.

    A reference: the best fitness so far. A proposal: the baseline (0) and the best proposal so far, references
    left out. With a quadratic ceiling among the references (softmax attention) no proposal would otherwise earn a
    second seed, and the run's best candidate could never be reported with an interval."""
    others = [e for e in lab.archive.experiments(run=lab.run) if e.fitness is not None and e.id != exp.id]
    if exp.proposer == "reference":
        return max((e.fitness.value for e in others), default=-math.inf)
    return max([0.0] + [e.fitness.value for e in others if e.proposer != "reference"])


def _ceiling_metrics(lab: Lab) -> dict[str, Any] | None:
    for exp in lab.archive.experiments(run=lab.run):
        if exp.proposer == "reference" and exp.name == lab.team.task_ceiling and exp.status == "ok":
            return seed_metrics(exp)[0]
    return None


def relative_fitness(task: str, own: list[dict[str, Any]], base: list[dict[str, Any]],
             ceiling: dict[str, Any] | None) -> Fitness:
    """Mean improvement over the baseline's mean; the two seed spreads add up in the stderr."""
    reference = base[0]
    mean, stderr = combine_seeds([fitness(task, m, reference) for m in own])
    base_mean, base_stderr = combine_seeds([fitness(task, b, reference) for b in base])
    flag = implausible(task, own[0], ceiling) if ceiling else ""
    return Fitness(value=mean - base_mean, stderr=math.hypot(stderr, base_stderr), seeds=len(own), flagged=flag)


def score_experiment(lab: Lab, exp: Experiment, evaluate_seed: Callable[..., EvalResult]) -> Scored:
    """`evaluate_seed(seed)` runs the run's task; `evaluate_seed(seed, task)` one of a suite's."""
    if lab.config.yardstick.tasks:
        return Scored(*score_suite(lab, exp, evaluate_seed, cascade_bar(lab, exp)))
    task = lab.config.task
    is_baseline = exp.proposer == "reference" and exp.name == lab.team.task_baseline
    baseline = None if is_baseline else lab.baseline()
    seeds = [lab.config.seed]
    results = [evaluate_seed(seeds[0])]
    first = results[0]
    base = [r.metrics for r in results] if is_baseline else seed_metrics(baseline)
    promising = first.ok and (is_baseline or relative_fitness(task, [first.metrics], base, None).value > cascade_bar(lab, exp))
    if promising:
        for k in range(1, lab.config.search.cascade_seeds + 1):
            seeds.append(lab.config.seed + k)
            results.append(evaluate_seed(seeds[-1]))
    metrics = first.to_dict()
    metrics["seeds"] = [{"seed": s, "status": r.status.value, "metrics": r.metrics} for s, r in zip(seeds, results)]
    if not first.ok:
        return Scored(results, metrics, None)
    own = [r.metrics for r in results if r.ok]
    return Scored(results, metrics, relative_fitness(task, own, own if is_baseline else base, _ceiling_metrics(lab)))
