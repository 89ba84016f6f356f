"""The ladder of fidelities: promising candidates climb to larger budgets with more seeds.

Rung 1 is the run's budget. After an experiment is evaluated, it climbs each configured rung in
turn while it stays in the top `promote_fraction` of the experiments measured on the rung below
(Genesys's ladder keeps about a quarter per rung, so each rung costs about the same in total).
Every rung's result goes into `metrics["rungs"][budget]`, the baseline is measured at a rung
the first time anyone climbs there (once, under a lock), and the experiment's fitness becomes
that of the highest rung reached, with its seeds and uncertainty. Idempotent: a rung already
recorded is not run again, so a climb cut short by a kill resumes where it stopped.
"""
from __future__ import annotations

from typing import Any, Callable

from agents.lab import Lab
from agents.scoring import relative_fitness
from agents.yardstick import promoted, rung_fitness
from evaluator.records import EvalResult
from knowledge.records import Experiment, Fitness

Evaluate = Callable[[Lab, Experiment, int, str], EvalResult]


def _seeds(lab: Lab, count: int) -> list[int]:
    return [lab.config.seed + k for k in range(count)]


def _entry(seeds: list[int], results: list[EvalResult]) -> dict[str, Any]:
    return {"seeds": [{"seed": s, "status": r.status.value, "metrics": r.metrics} for s, r in zip(seeds, results)],
            "train_tokens_per_second": [r.train_tokens_per_second for r in results if r.ok],
            "inference_latency_ms": [r.inference_latency_ms for r in results if r.ok]}


def _ok_metrics(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return [s["metrics"] for s in entry.get("seeds", []) if s["status"] == "ok"]


def baseline_at(lab: Lab, budget: str, seeds: int, evaluate: Evaluate) -> list[dict[str, Any]]:
    """The baseline's task metrics at a rung, measured once in this run (the first climber pays)."""
    with lab.ladder_lock:
        baseline = lab.baseline()
        entry = (baseline.metrics.get("rungs") or {}).get(budget)
        if entry is None:
            chosen = _seeds(lab, seeds)
            entry = _entry(chosen, [evaluate(lab, baseline, s, budget) for s in chosen])
            own = _ok_metrics(entry)
            if own:
                entry["fitness"] = relative_fitness(lab.config.task, own, own, None).model_copy(
                    update={"rung": budget}).model_dump()
            baseline = lab.archive.get_experiment(baseline.id)
            lab.update(baseline.id, metrics={**baseline.metrics,
                                             "rungs": {**(baseline.metrics.get("rungs") or {}), budget: entry}})
            lab.log(baseline.id, "ladder", f"baseline measured at rung {budget}: {len(own)} of {seeds} seeds ok")
        return _ok_metrics(entry)


def climb(lab: Lab, exp_id: str, evaluate: Evaluate) -> None:
    """Take the experiment up the configured rungs while it stays promising; record every rung."""
    ladder = lab.config.yardstick.ladder
    exp = lab.archive.get_experiment(exp_id)
    if not ladder or exp.status != "ok" or exp.fitness is None or exp.fitness.flagged \
            or exp.id == getattr(lab.baseline(), "id", None):
        return
    run_budget, below = lab.config.budget, lab.config.budget
    for rung in ladder:
        exp = lab.archive.get_experiment(exp_id)
        rungs = dict(exp.metrics.get("rungs") or {})
        if rung.budget in rungs:
            if "fitness" not in rungs[rung.budget]:
                return  # it failed there: the climb ends
            below = rung.budget
            continue
        mine = rung_fitness(exp, below, run_budget)
        peers = [v for e in lab.archive.experiments(run=lab.run) if e.id != exp.id
                 and (v := rung_fitness(e, below, run_budget)) is not None]
        if mine is None or not promoted(mine, peers, rung.promote_fraction):
            return
        base = baseline_at(lab, rung.budget, rung.seeds, evaluate)
        chosen = _seeds(lab, rung.seeds)
        entry = _entry(chosen, [evaluate(lab, exp, s, rung.budget) for s in chosen])
        own = _ok_metrics(entry)
        fitness: Fitness | None = None
        if own and base:
            fitness = relative_fitness(lab.config.task, own, base, None).model_copy(update={"rung": rung.budget})
            entry["fitness"] = fitness.model_dump()
        exp = lab.archive.get_experiment(exp_id)
        rungs = {run_budget: {"fitness": exp.fitness.model_dump()}, **(exp.metrics.get("rungs") or {}),
                 rung.budget: entry}
        lab.update(exp_id, metrics={**exp.metrics, "rungs": rungs}, **({"fitness": fitness} if fitness else {}))
        lab.log(exp_id, "ladder", f"rung {rung.budget}: " + (
            f"fitness {fitness.value:+.4f} ± {fitness.stderr:.4f} over {fitness.seeds} seeds" if fitness
            else f"no fitness ({len(own)} of {rung.seeds} seeds ok, baseline {len(base)} ok)"))
        if fitness is None:
            return
        below = rung.budget
