"""The ladder of fidelities: promising candidates climb to larger budgets with more seeds.

Rung 1 is the run's budget. After an experiment is evaluated, it climbs each configured rung in
turn while it stays in the top `promote_fraction` of the experiments measured on the rung below
(Genesys's ladder keeps about a quarter per rung, so each rung costs about the same in total).
Every rung's result goes into `metrics["rungs"][budget]`, the references that set the rung's
scale (the baseline; on a suite of tasks also the ceiling) are measured at a rung the first time
anyone climbs there (once, under a lock), and the experiment's fitness becomes that of the highest
rung reached, with its seeds and uncertainty. On a suite every seed of a rung evaluates every task
at the rung's budget and the rung keeps them like `metrics.suite`. Idempotent: a rung already
recorded is not run again, so a climb cut short by a kill resumes where it stopped.
"""
from __future__ import annotations

from typing import Any, Callable

from agents.lab import Lab
from agents.scoring import relative_fitness
from agents.suite_scoring import ceiling_experiment, ok_runs, result_record, score_rung, suite_record, weights_of
from agents.yardstick import promoted, rung_fitness
from evaluator.records import EvalResult
from knowledge.records import Experiment, Fitness

Evaluate = Callable[..., EvalResult]  # (lab, exp, seed, budget), with task=... on a suite (steps.run_evaluation)


def _seeds(lab: Lab, count: int) -> list[int]:
    return [lab.config.seed + k for k in range(count)]


def _entry(seeds: list[int], results: list[EvalResult]) -> dict[str, Any]:
    return {"seeds": [{"seed": s, "status": r.status.value, "metrics": r.metrics} for s, r in zip(seeds, results)],
            "train_tokens_per_second": [r.train_tokens_per_second for r in results if r.ok],
            "inference_latency_ms": [r.inference_latency_ms for r in results if r.ok]}


def _ok_metrics(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return [s["metrics"] for s in entry.get("seeds", []) if s["status"] == "ok"]


def _ok_count(entry: dict[str, Any]) -> int:
    return len(ok_runs(entry["suite"])) if "suite" in entry else len(_ok_metrics(entry))


def _measure(lab: Lab, exp: Experiment, budget: str, seeds: int, evaluate: Evaluate) -> dict[str, Any]:
    """The experiment's rung entry: every seed at the rung's budget (on a suite, every task of every seed)."""
    chosen, tasks = _seeds(lab, seeds), lab.config.yardstick.tasks
    if not tasks:
        return _entry(chosen, [evaluate(lab, exp, s, budget) for s in chosen])
    runs = [{t: evaluate(lab, exp, s, budget, task=t) for t in tasks} for s in chosen]
    entry = _entry(chosen, [run[tasks[0]] for run in runs])  # the first task's, as metrics.seeds keeps
    entry["suite"] = suite_record(tasks, chosen, [{t: result_record(r) for t, r in run.items()} for run in runs])
    return entry


def _score(lab: Lab, budget: str, entry: dict[str, Any], base: dict[str, Any],
           ceiling: dict[str, Any] | None) -> Fitness | None:
    """Fitness at a rung against the references measured there; None when no seed (or no baseline's) is ok."""
    if lab.config.yardstick.tasks:
        found = score_rung(weights_of(lab), entry["suite"], base["suite"], ceiling["suite"] if ceiling else None)
    else:
        own, reference = _ok_metrics(entry), _ok_metrics(base)
        found = relative_fitness(lab.config.task, own, reference, None) if own and reference else None
    return found.model_copy(update={"rung": budget}) if found else None


def _is_reference_at_rungs(lab: Lab, exp: Experiment) -> bool:
    """The baseline, and on a suite the ceiling: measured at every rung anyone reaches, they do not climb."""
    names = {lab.team.task_baseline} | ({lab.team.task_ceiling} if lab.config.yardstick.tasks else set())
    return exp.proposer == "reference" and exp.name in names


def _record(lab: Lab, exp_id: str, budget: str, entry: dict[str, Any]) -> None:
    exp = lab.archive.get_experiment(exp_id)
    lab.update(exp_id, metrics={**exp.metrics, "rungs": {**(exp.metrics.get("rungs") or {}), budget: entry}})


def references_at(lab: Lab, budget: str, seeds: int,
                  evaluate: Evaluate) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The rung entries of the baseline (0) and, on a suite, of the ceiling (1; None when the run has
    no ceiling that evaluated ok), each measured once in this run (the first climber pays)."""
    with lab.ladder_lock:
        ceiling = ceiling_experiment(lab) if lab.config.yardstick.tasks else None
        references = [lab.baseline()] + ([ceiling] if ceiling else [])
        entries = []
        for ref in references:
            entry = (ref.metrics.get("rungs") or {}).get(budget)
            if entry is None:
                entry = _measure(lab, ref, budget, seeds, evaluate)
                _record(lab, ref.id, budget, entry)
                lab.log(ref.id, "ladder", f"{ref.name} measured at rung {budget}: {_ok_count(entry)} of {seeds} seeds ok")
            entries.append(entry)
        base, top = entries[0], (entries[1] if ceiling else None)
        for ref, entry in zip(references, entries):  # after both: the baseline's scores use the ceiling's scale
            if "fitness" not in entry and (fitness := _score(lab, budget, entry, base, top)) is not None:
                _record(lab, ref.id, budget, {**entry, "fitness": fitness.model_dump()})
        return base, top


def climb(lab: Lab, exp_id: str, evaluate: Evaluate) -> None:
    """Take the experiment up the configured rungs while it stays promising; record every rung."""
    ladder = lab.config.yardstick.ladder
    exp = lab.archive.get_experiment(exp_id)
    if not ladder or exp.status != "ok" or exp.fitness is None or exp.fitness.flagged \
            or _is_reference_at_rungs(lab, exp):
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
        base, ceiling = references_at(lab, rung.budget, rung.seeds, evaluate)
        entry = _measure(lab, exp, rung.budget, rung.seeds, evaluate)
        fitness = _score(lab, rung.budget, entry, base, ceiling)
        if fitness is not None:
            entry["fitness"] = fitness.model_dump()
        exp = lab.archive.get_experiment(exp_id)
        rungs = {run_budget: {"fitness": exp.fitness.model_dump()}, **(exp.metrics.get("rungs") or {}),
                 rung.budget: entry}
        lab.update(exp_id, metrics={**exp.metrics, "rungs": rungs}, **({"fitness": fitness} if fitness else {}))
        lab.log(exp_id, "ladder", f"rung {rung.budget}: " + (
            f"fitness {fitness.value:+.4f} ± {fitness.stderr:.4f} over {fitness.seeds} seeds" if fitness
            else f"no fitness ({_ok_count(entry)} of {rung.seeds} seeds ok, baseline {_ok_count(base)} ok)"))
        if fitness is None:
            return
        below = rung.budget
