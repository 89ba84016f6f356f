"""`archlab replay RUN EXP`: re-evaluate one archived experiment from what the archive recorded
and say whether it reproduces.

The record gives the code, task, budget, device, seeds, threads and data hashes; what this
machine has now (harness, torch, device, data) is compared with it first, and a data hash
that differs is refused unless asked, since figures on other data answer another question.
"""
from __future__ import annotations

import dataclasses
import json
import math
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.config import RunConfig
from archlab.errors import UsageError
from evaluator.records import HARNESS_VERSION, EvalResult
from knowledge.novelty import code_hash
from knowledge.records import Experiment, Fitness

PRIMARY = {"mqar": "accuracy", "bytelm": "val_bpb"}
TOLERANCE_SIGMAS = 2.0  # "within the recorded uncertainty": two combined standard errors


@dataclass
class Plan:
    """What a replay evaluates, and what it found different from the record before running."""

    exp: Experiment
    task: str
    budget: str
    device: str
    seeds: list[int]
    threads: int | None
    data: Path | None
    recorded_seeds: list[int]
    compile: bool | str | None = None  # the run's torch.compile setting (None: the budget's), as the run evaluated
    differences: list[str] = field(default_factory=list)       # said plainly; the replay still runs
    data_mismatches: list[str] = field(default_factory=list)   # refused unless --allow-data-mismatch
    inconsistencies: list[str] = field(default_factory=list)   # the record contradicts itself: refused

    @property
    def same_budget(self) -> bool:
        return self.budget == self.exp.metrics.get("budget")


@dataclass
class Outcome:
    results: list[EvalResult]
    fitness: Fitness | None
    rows: list[tuple[str, float | None, float | None]]  # metric, recorded mean, replayed mean
    verdict: str
    reproduced: bool


def make_plan(exp: Experiment, config: RunConfig, seeds: int | None, device: str | None,
              budget: str | None) -> Plan:
    """The replay's settings from the record, with the user's overrides; raises UsageError when
    the experiment was never evaluated."""
    recorded = exp.metrics
    if not recorded.get("status"):
        raise UsageError(f"{exp.id} ({exp.name or 'unnamed'}) was never evaluated (stage {exp.stage.value}"
                         f"{': ' + exp.reason if exp.reason else ''}); only evaluated experiments can be replayed")
    recorded_seeds = [int(s["seed"]) for s in recorded.get("seeds", [])] or [int(recorded["seed"])]
    count = seeds or len(recorded_seeds)
    if count < 1:
        raise UsageError(f"--seeds {count}: give at least 1")
    chosen = recorded_seeds[:count] + [recorded_seeds[0] + k for k in range(len(recorded_seeds), count)]
    threads = exp.provenance.threads if exp.provenance and exp.provenance.threads else config.threads_per_worker
    plan = Plan(exp=exp, task=config.task, budget=budget or recorded["budget"], device=device or recorded["device"],
                seeds=chosen, threads=threads, data=config.data, recorded_seeds=recorded_seeds, compile=config.compile)
    _check_record(plan, config)
    _compare_environment(plan, config)
    return plan


def _check_record(plan: Plan, config: RunConfig) -> None:
    """The archive must agree with itself about the seeds: a disagreement means it was edited."""
    recorded = plan.exp.metrics
    if int(recorded["seed"]) != plan.recorded_seeds[0]:
        plan.inconsistencies.append(f"eval.json says seed {recorded['seed']}, the list of seeds starts at "
                                    f"{plan.recorded_seeds[0]}")
    if plan.recorded_seeds[0] != config.seed:
        plan.inconsistencies.append(f"the run's config.json has seed {config.seed}, the experiment's first seed is "
                                    f"{plan.recorded_seeds[0]} (a run evaluates its seed first)")
    hashed = set(plan.exp.provenance.data) if plan.exp.provenance else set()
    if hashed and hashed != {str(s) for s in plan.recorded_seeds}:
        plan.inconsistencies.append(f"data hashes are recorded for seeds {sorted(hashed)}, metrics for seeds "
                                    f"{plan.recorded_seeds}")


def _compare_environment(plan: Plan, config: RunConfig) -> None:
    import numpy
    import torch

    from evaluator.budgets import get_budget

    recorded, prov = plan.exp.metrics, plan.exp.provenance
    now = {"harness": HARNESS_VERSION, "torch": torch.__version__, "numpy": numpy.__version__,
           "python": platform.python_version(), "device": plan.device, "threads": plan.threads}
    then = {"harness": recorded.get("harness_version"), "device": recorded.get("device"),
            **({"torch": prov.torch, "numpy": prov.numpy, "python": prov.python, "threads": prov.threads}
               if prov else {})}
    for key, value in now.items():
        if key not in then:
            plan.differences.append(f"{key}: not recorded (the run predates provenance); now {value}")
        elif then[key] != value:
            plan.differences.append(f"{key}: recorded {then[key]}, now {value}")
    if not plan.same_budget:
        plan.differences.append(f"budget: recorded {recorded['budget']}, now {plan.budget} (a scale question: "
                                "fitness is measured against the baseline replayed at that budget)")
        return
    spec = json.loads(json.dumps(dataclasses.asdict(get_budget(plan.task, plan.budget))))
    changed = {k: (recorded["budget_spec"].get(k), v) for k, v in spec.items()
               if recorded.get("budget_spec") and recorded["budget_spec"].get(k) != v}
    for key, (old, new) in changed.items():
        plan.differences.append(f"budget {plan.budget!r} is defined differently now: {key} {old} -> {new}")
    _compare_data(plan)


def _compare_data(plan: Plan) -> None:
    from agents.provenance import data_sha256

    prov = plan.exp.provenance
    corpus = (plan.exp.metrics.get("metrics") or {}).get("corpus_sha256")
    for seed in plan.seeds:
        recorded = (prov.data.get(str(seed)) if prov else None) or corpus
        if recorded is None:
            if seed in plan.recorded_seeds:
                plan.differences.append(f"data of seed {seed}: no hash recorded (the run predates provenance)")
            continue
        try:
            now = data_sha256(plan.task, plan.budget, seed, plan.data)
        except (OSError, ValueError) as error:
            plan.data_mismatches.append(f"seed {seed}: the data cannot be made here: {error}")
            continue
        if now != recorded:
            plan.data_mismatches.append(f"seed {seed}: data hash recorded {recorded[:16]}..., now {now[:16]}... "
                                        f"(data: {plan.data or 'generated by the task'})")


# ---- running --------------------------------------------------------------------------------

def evaluate_seeds(target: Path | str, plan: Plan, budget: str, out_dir: Path, what: str) -> list[EvalResult]:
    from evaluator.evaluate import evaluate

    results = []
    for seed in plan.seeds:
        print(f"evaluating {what}, seed {seed} ({plan.task}, budget {budget}, {plan.device}) ...", file=sys.stderr,
              flush=True)
        results.append(evaluate(target, task=plan.task, budget=budget, device=plan.device, seed=seed,
                                out_dir=out_dir / f"{what}-seed{seed}", data=plan.data, threads=plan.threads,
                                compile=plan.compile))
    return results


def candidate_target(exp: Experiment, out_dir: Path) -> tuple[Path | str, str]:
    """The file to evaluate (a reference by name: the evaluator knows which one is the ceiling)
    and a difference to report when a reference's file changed since the run."""
    if exp.proposer == "reference":
        from evaluator.references import get_reference

        current = get_reference(exp.name).path.read_text()
        changed = code_hash(current) != exp.code_hash if exp.code_hash else False
        return exp.name, (f"reference {exp.name}: its file changed since the run (code hash {exp.code_hash[:12]} "
                          f"-> {code_hash(current)[:12]}); the current file is evaluated" if changed else "")
    path = out_dir / "candidate.py"
    path.write_text(exp.code)
    return path, ""


# ---- comparing ------------------------------------------------------------------------------

def _numbers(result: dict[str, Any]) -> dict[str, float]:
    """The figures compared side by side: numeric task metrics, parameters, final training loss."""
    flat: dict[str, float] = {}
    for key, value in (result.get("metrics") or {}).items():
        items = value.items() if isinstance(value, dict) else [("", value)]
        for sub, item in items:
            if isinstance(item, (int, float)) and not isinstance(item, bool):
                flat[f"{key}.{sub}" if sub else key] = float(item)
    if result.get("parameters") is not None:
        flat["parameters"] = float(result["parameters"])
    curve = result.get("loss_curve") or []
    if curve:
        flat["final_train_loss"] = float(curve[-1][1])
    return flat


def _mean_rows(recorded: list[dict[str, Any]], replayed: list[dict[str, Any]]) -> list[tuple[str, float | None, float | None]]:
    old, new = [_numbers(r) for r in recorded], [_numbers(r) for r in replayed]
    keys = list(dict.fromkeys([k for n in old + new for k in n]))

    def mean(table: list[dict[str, float]], key: str) -> float | None:
        values = [n[key] for n in table if key in n]
        return sum(values) / len(values) if values else None
    return [(key, mean(old, key), mean(new, key)) for key in keys]


def recorded_seed_results(exp: Experiment) -> dict[int, dict[str, Any]]:
    """Per recorded seed: status and task metrics (the first seed also has the whole eval.json)."""
    seeds = {int(s["seed"]): {"status": s["status"], "metrics": s["metrics"]} for s in exp.metrics.get("seeds", [])}
    first = int(exp.metrics["seed"])
    seeds[first] = {**seeds.get(first, {}), **exp.metrics}
    return seeds


def _same_figures(recorded: dict[str, Any], replayed: dict[str, Any]) -> bool:
    """Bit-exact: the task metrics and, where recorded (the first seed), parameters and loss curve."""
    return all(json.dumps(recorded[key], sort_keys=True) == json.dumps(replayed.get(key), sort_keys=True)
               for key in ("metrics", "parameters", "loss_curve") if key in recorded)


def compare(plan: Plan, results: list[EvalResult], fitness: Fitness | None) -> Outcome:
    exp, primary = plan.exp, PRIMARY.get(plan.task, "")
    recorded = recorded_seed_results(exp)
    replayed = {r.seed: r.to_dict() for r in results}
    rows = _mean_rows(list(recorded.values()), list(replayed.values()))
    rows.append(("fitness", exp.fitness.value if exp.fitness else None, fitness.value if fitness else None))
    if not plan.same_budget:
        ok = all(r.ok for r in results)
        verdict = (f"at budget {plan.budget}: " + (f"fitness {fitness.value:+.4f} ± {fitness.stderr:.4f} over "
                   f"{fitness.seeds} seed(s)" if fitness else f"status {results[0].status.value}: {results[0].reason}")
                   + (f"; recorded at {exp.metrics['budget']}: {exp.fitness.value:+.4f} ± {exp.fitness.stderr:.4f}"
                      if exp.fitness else ""))
        return Outcome(results, fitness, rows, verdict, ok)
    shared = [s for s in plan.seeds if s in recorded]
    statuses = [(s, recorded[s].get("status"), replayed[s]["status"]) for s in shared]
    changed = [f"seed {s}: status {old} -> {new}" for s, old, new in statuses if old != new]
    if changed:
        return Outcome(results, fitness, rows, "NOT reproduced: " + "; ".join(changed), False)
    exact = all(_same_figures(recorded[s], replayed[s]) for s in shared)
    if not exp.fitness or fitness is None:
        same = all(recorded[s].get("reason", replayed[s]["reason"]) == replayed[s]["reason"] for s in shared)
        verdict = f"reproduced: the same status {statuses[0][2]}" if same else \
            f"reproduced the status {statuses[0][2]}, with another reason: {results[0].reason}"
        return Outcome(results, fitness, rows, verdict, True)
    if exact:
        return Outcome(results, fitness, rows, f"reproduced bit-exactly (seed(s) {', '.join(map(str, shared))}: every "
                       "figure identical)", True)
    old = [r for key, r, _ in rows if key == primary][0]
    new = [n for key, _, n in rows if key == primary][0]
    delta = (new or 0.0) - (old or 0.0)
    sigma = math.hypot(exp.fitness.stderr, fitness.stderr)
    within = abs(delta) <= TOLERANCE_SIGMAS * sigma
    verdict = (f"{'reproduced within' if within else 'NOT reproduced: outside'} the recorded uncertainty: "
               f"|Δ{primary}| {abs(delta):.6f} {'<=' if within else '>'} {TOLERANCE_SIGMAS:g}σ = "
               f"{TOLERANCE_SIGMAS * sigma:.6f} (not bit-exact)")
    return Outcome(results, fitness, rows, verdict, within)


def render(plan: Plan, outcome: Outcome) -> str:
    exp = plan.exp
    lines = [f"replay of {exp.id} ({exp.name}) from run {exp.run}: task {plan.task}, budget {plan.budget}, "
             f"device {plan.device}, seed(s) {', '.join(map(str, plan.seeds))}"]
    lines.append("what differs from the recorded evaluation:")
    lines += [f"  {d}" for d in plan.differences + [f"data {m}" for m in plan.data_mismatches]] or \
        ["  nothing: the same harness, torch, numpy, python, device, threads, budget and data hashes"]
    recorded_label = f"recorded ({len(plan.recorded_seeds)} seed(s))"
    replayed_label = f"replayed ({len(plan.seeds)} seed(s))"
    lines.append(f"{'figure':<28} {recorded_label:>22} {replayed_label:>22} {'difference':>14}")
    for key, old, new in outcome.rows:
        diff = f"{new - old:+14.6g}" if old is not None and new is not None else f"{'-':>14}"
        lines.append(f"{key:<28} {_cell(old):>22} {_cell(new):>22} {diff}")
    if exp.fitness and outcome.fitness:
        lines.append(f"{'fitness ± stderr':<28} {exp.fitness.value:>+13.4f} ± {exp.fitness.stderr:<6.4f} "
                     f"{outcome.fitness.value:>+13.4f} ± {outcome.fitness.stderr:<6.4f}")
    lines.append(f"verdict: {outcome.verdict}")
    return "\n".join(lines)


def _cell(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if value.is_integer() else f"{value:.6f}"


def event_data(plan: Plan, outcome: Outcome) -> dict[str, Any]:
    """What the replay event records: settings, differences, every figure and the verdict."""
    return {"budget": plan.budget, "device": plan.device, "seeds": plan.seeds, "threads": plan.threads,
            "differences": plan.differences, "data_mismatches": plan.data_mismatches,
            "figures": {key: {"recorded": old, "replayed": new} for key, old, new in outcome.rows},
            "fitness": outcome.fitness.model_dump() if outcome.fitness else None,
            "replayed": [{"seed": r.seed, "status": r.status.value, "reason": r.reason, "metrics": r.metrics}
                         for r in outcome.results],
            "verdict": outcome.verdict, "reproduced": outcome.reproduced}
