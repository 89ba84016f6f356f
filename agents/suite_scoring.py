"""Scoring an experiment on a suite of tasks (`[yardstick] tasks`), with the same seed cascade as one task.

Every seed evaluates every task of the suite at the run's budget. Fitness is the mean suite score
over the experiment's seeds minus the baseline's (evaluator.suite: each task 0 at the baseline, 1
at the ceiling, plus weighted efficiency); the two seed spreads add up in the stderr, as for one
task. The ceiling's first seed sets the scale; the driver evaluates it right after the baseline,
so every later experiment is scored on the same scale.
"""
from __future__ import annotations

import math
from typing import Any, Callable

from agents.lab import Lab
from evaluator.fitness import combine_seeds
from evaluator.records import EvalResult, Status
from evaluator.suite import SuiteWeights, suite_score
from knowledge.records import Experiment, Fitness

SeedRun = dict[str, dict[str, Any]]  # task -> {"status", "metrics", "train_tokens_per_second", "inference_latency_ms"}


def weights_of(lab: Lab) -> SuiteWeights:
    config = lab.config.yardstick
    return SuiteWeights({t: config.task_weights.get(t, 1.0) for t in config.tasks},
                        quality=config.quality_weight, efficiency=config.efficiency_weight)


def result_record(result: EvalResult) -> dict[str, Any]:
    """One task's evaluation as a suite record keeps it (what suite_score reads)."""
    return {"status": result.status.value, "metrics": result.metrics,
            "train_tokens_per_second": result.train_tokens_per_second,
            "inference_latency_ms": result.inference_latency_ms}


def suite_record(tasks: list[str], seeds: list[int], runs: list[SeedRun]) -> dict[str, Any]:
    """What `metrics.suite` (and a ladder rung's `suite`) keeps: every seed's result per task."""
    return {"tasks": list(tasks), "seeds": [{"seed": s, "results": r} for s, r in zip(seeds, runs)]}


def ok_runs(record: dict[str, Any] | None) -> list[SeedRun]:
    """The seeds of a suite record on which every task evaluated ok."""
    seeds = (record or {}).get("seeds", [])
    return [s["results"] for s in seeds if all(r["status"] == "ok" for r in s["results"].values())]


def suite_runs(exp: Experiment | None) -> list[SeedRun]:
    """The experiment's seeds on which every task evaluated ok."""
    return ok_runs(exp.metrics.get("suite")) if exp is not None else []


def suite_fitness(weights: SuiteWeights, own: list[SeedRun], base: list[SeedRun], ceiling: SeedRun | None) -> Fitness:
    reference = base[0]
    ceilings = {t: (ceiling or {}).get(t) for t in weights.tasks}
    mine = [suite_score(run, reference, ceilings, weights) for run in own]
    mean, stderr = combine_seeds([s.value for s in mine])
    base_mean, base_stderr = combine_seeds([suite_score(run, reference, ceilings, weights).value for run in base])
    notes = sorted({note for s in mine for note in s.notes})
    return Fitness(value=mean - base_mean, stderr=math.hypot(stderr, base_stderr), seeds=len(own),
                   flagged="", rung="", components={"quality": sum(s.quality for s in mine) / len(mine),
                                                   "efficiency": sum(s.efficiency for s in mine) / len(mine),
                                                   **{f"task:{t}": sum(s.per_task[t] for s in mine) / len(mine)
                                                      for t in weights.tasks}}, notes=notes)


def score_rung(weights: SuiteWeights, own: dict[str, Any], base: dict[str, Any],
               ceiling: dict[str, Any] | None) -> Fitness | None:
    """Suite fitness from three suite records measured at one budget (a ladder rung): the candidate's,
    the baseline's (0) and the ceiling's (1; its first seed ok on every task sets the scale, as on
    the run's rung). None when no seed of the candidate or of the baseline is ok on every task."""
    mine, reference, top = ok_runs(own), ok_runs(base), ok_runs(ceiling)
    return suite_fitness(weights, mine, reference, top[0] if top else None) if mine and reference else None


def ceiling_experiment(lab: Lab) -> Experiment | None:
    """The run's ceiling reference, when it evaluated ok."""
    for exp in lab.archive.experiments(run=lab.run):
        if exp.proposer == "reference" and exp.name == lab.team.task_ceiling and exp.status == "ok":
            return exp
    return None


def _ceiling_run(lab: Lab) -> SeedRun | None:
    runs = suite_runs(ceiling_experiment(lab))
    return runs[0] if runs else None


def score_suite(lab: Lab, exp: Experiment, evaluate: Callable[[int, str], EvalResult],
                cascade_bar: float) -> tuple[list[EvalResult], dict[str, Any], Fitness | None]:
    """(every evaluation, failures first; the metrics to record; fitness or None when a task failed)."""
    tasks, weights = lab.config.yardstick.tasks, weights_of(lab)
    is_baseline = exp.proposer == "reference" and exp.name == lab.team.task_baseline
    is_ceiling = exp.proposer == "reference" and exp.name == lab.team.task_ceiling

    def run_seed(seed: int) -> dict[str, EvalResult]:
        done: dict[str, EvalResult] = {}
        for task in tasks:
            done[task] = evaluate(seed, task)
            if done[task].status is Status.SKIPPED:  # the proxy gate stopped it: the other tasks are not run
                break
        return done
    seeds = [lab.config.seed]
    runs = [run_seed(seeds[0])]
    lite = [{t: result_record(r) for t, r in runs[0].items()}]
    first_ok = all(r.ok for r in runs[0].values())
    base = lite if is_baseline else suite_runs(lab.baseline())
    ceiling = lite[0] if is_ceiling and first_ok else _ceiling_run(lab)
    promising = first_ok and (is_baseline or suite_fitness(weights, lite, base, ceiling).value > cascade_bar)
    if promising:
        for k in range(1, lab.config.search.cascade_seeds + 1):
            seeds.append(lab.config.seed + k)
            runs.append(run_seed(seeds[-1]))
            lite.append({t: result_record(r) for t, r in runs[-1].items()})
    results = [r for run in runs for r in run.values()]
    results.sort(key=lambda r: r.ok)  # a failure first: its status and reason are the experiment's
    first = runs[0][tasks[0]]
    metrics = first.to_dict()
    metrics["seeds"] = [{"seed": s, "status": run[tasks[0]].status.value, "metrics": run[tasks[0]].metrics}
                        for s, run in zip(seeds, runs)]
    metrics["suite"] = suite_record(tasks, seeds, lite)
    if not first_ok:
        return results, metrics, None
    own = [run for run in lite if all(r["status"] == "ok" for r in run.values())]
    return results, metrics, suite_fitness(weights, own, own if is_baseline else base, ceiling)
