"""`archlab status RUN`, `archlab ls RUN`, `archlab show RUN EXP`: read a run's archive.

They only read (the archive is opened read-only), so they work beside a running driver and on
read-only storage."""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
from collections import Counter
from pathlib import Path

from archlab.errors import UsageError
from archlab.insights.yardstick import status_lines, yardstick_figures
from archlab.rundir import find_run, load_run_config, open_for_reading
from archlab.runlock import driver_of
from knowledge.archive import Archive, ExperimentNotFoundError
from knowledge.records import Experiment, Stage


def register(subparsers: argparse._SubParsersAction) -> None:
    for name, handler, help_text in (("status", status, "a run's standing"), ("ls", list_experiments, "a run's experiments"),
                                     ("show", show, "one experiment in full")):
        parser = subparsers.add_parser(name, help=help_text)
        parser.add_argument("run", help="run directory or name")
        if name == "show":
            parser.add_argument("experiment", help="experiment id, e.g. e0007")
            parser.add_argument("--diff", action="store_true", help="only the unified diff of its code against "
                                "its parent's")
        if name == "ls":
            parser.add_argument("--sort", default="id", help=f"order by one of: {', '.join(SORT_KEYS)} "
                                "(fitness and params: largest first)")
            parser.add_argument("--status", help="keep experiments whose status or stage is one of these "
                                "(comma-separated), e.g. ok,crashed or awaiting_review")
        parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
        parser.add_argument("--json", action="store_true")
        parser.set_defaults(handler=handler)


def _fitness(exp: Experiment) -> str:
    if exp.fitness is None:
        return "-"
    flag = " !" if exp.fitness.flagged else ""
    return f"{exp.fitness.value:+.4f}±{exp.fitness.stderr:.4f}{flag}"


def run_status(archive: Archive, run: str) -> dict:
    experiments = archive.experiments(run=run)
    proposals = [e for e in experiments if e.proposer != "reference"]
    scored = [e for e in proposals if e.fitness is not None]
    best = max(scored, key=lambda e: e.fitness.value, default=None)
    spend = archive.spend(run)
    train = sum(e.timings.get("train", 0.0) for e in experiments)
    total = sum(sum(v for k, v in e.timings.items() if k != "train") for e in experiments)
    return {
        "run": run,
        "experiments": len(proposals),
        "finished": sum(e.finished for e in proposals),
        "stages": dict(Counter(e.stage.value for e in proposals)),
        "statuses": dict(Counter(e.status or e.stage.value for e in proposals if e.finished)),
        "references": {e.name: {"status": e.status or e.stage.value, "fitness": e.fitness.value if e.fitness else None,
                                "metrics": (e.metrics.get("metrics") or {})} for e in experiments if e.proposer == "reference"},
        "best": {"id": best.id, "name": best.name, "fitness": best.fitness.model_dump()} if best else None,
        "spend": {"calls": spend.calls, "tokens": spend.tokens, "usd": spend.usd},
        "seconds": {"training": round(train, 1), "all_steps": round(total, 1)},
    }


def status(args: argparse.Namespace) -> int:
    run_dir = find_run(args.run, args.runs_dir)
    config = load_run_config(run_dir)
    with open_for_reading(run_dir) as archive:
        report = run_status(archive, config.name)
        figures = yardstick_figures(archive.experiments(run=config.name), config)
    report["yardstick"] = dataclasses.asdict(figures)
    holder = driver_of(run_dir)
    report["driver"] = {"host": holder.host, "pid": holder.pid, "command": holder.command} if holder else None
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"run {report['run']} ({config.task}, budget {config.budget}): {report['finished']}/{config.experiments} "
          f"proposals finished")
    print(f"  driver: {holder.describe()}" if holder else "  driver: none")
    print("  stages: " + ", ".join(f"{k} {v}" for k, v in report["stages"].items()))
    print("  outcomes: " + ", ".join(f"{k} {v}" for k, v in report["statuses"].items()))
    best = report["best"]
    print(f"  best: {best['id']} {best['name']} fitness {best['fitness']['value']:+.4f}" if best else "  best: none yet")
    for line in status_lines(figures):
        print(f"  {line}")
    print(f"  spend: ${report['spend']['usd']:.2f} in {report['spend']['calls']} LLM calls")
    print(f"  time: {report['seconds']['training']:.0f}s training of {report['seconds']['all_steps']:.0f}s in steps")
    return 0


def _params(exp: Experiment) -> int | None:
    return exp.metrics.get("parameters")


# name -> (key, descending); experiments without the figure go last either way
SORT_KEYS = {
    "id": (lambda e: e.id, False), "name": (lambda e: e.name, False),
    "fitness": (lambda e: e.fitness.value if e.fitness else None, True), "params": (_params, True),
    "stage": (lambda e: e.stage.value, False), "status": (lambda e: e.status or None, False),
    "proposer": (lambda e: e.proposer, False), "parent": (lambda e: e.parent_id, False),
}


def status_choices() -> list[str]:
    from evaluator.records import Status

    return sorted({s.value for s in Status} | {s.value for s in Stage})


def select(experiments: list[Experiment], sort: str, statuses: str | None) -> list[Experiment]:
    """`ls --status` and `--sort`: bad values are usage errors that list the choices."""
    if sort not in SORT_KEYS:
        raise UsageError(f"--sort {sort!r} is not a column to sort by; choose one of: {', '.join(SORT_KEYS)}")
    if statuses is not None:
        wanted = {s.strip() for s in statuses.split(",") if s.strip()}
        unknown = sorted(wanted - set(status_choices()))
        if unknown or not wanted:
            raise UsageError(f"--status {statuses!r}: {'unknown ' + ', '.join(unknown) if unknown else 'empty'}; "
                             f"choose from (comma-separated): {', '.join(status_choices())}")
        experiments = [e for e in experiments if e.status in wanted or e.stage.value in wanted]
    key, descending = SORT_KEYS[sort]
    known = [e for e in experiments if key(e) is not None]
    return sorted(known, key=key, reverse=descending) + [e for e in experiments if key(e) is None]


def _table(experiments: list[Experiment]) -> list[str]:
    """Columns as wide as their longest value: names and stages are never cut."""
    rows = [(e.id, e.name or "-", e.proposer or "-", e.parent_id or "-", e.stage.value, e.status or "-",
             f"{_params(e):,}" if _params(e) is not None else "-", _fitness(e)) for e in experiments]
    header = ("id", "name", "proposer", "parent", "stage", "status", "params", "fitness")
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    right = {6}  # numbers line up on the right
    return ["  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                      for i, (cell, w) in enumerate(zip(row, widths))).rstrip() for row in (header, *rows)]


def list_experiments(args: argparse.Namespace) -> int:
    run_dir = find_run(args.run, args.runs_dir)
    with open_for_reading(run_dir) as archive:
        experiments = select(archive.experiments(run=load_run_config(run_dir).name), args.sort, args.status)
    if args.json:
        print(json.dumps([e.model_dump(mode="json", exclude={"code", "metrics"}) for e in experiments], indent=2))
        return 0
    if not experiments:
        print(f"no experiments{' with status ' + args.status if args.status else ''} in {run_dir}")
        return 0
    print("\n".join(_table(experiments)))
    return 0


def code_diff(exp: Experiment, parent: Experiment) -> str:
    """The unified diff from the parent's code to the experiment's (empty when they are the same)."""
    return "".join(difflib.unified_diff(
        parent.code.splitlines(keepends=True), exp.code.splitlines(keepends=True),
        fromfile=f"{parent.id}/candidate.py ({parent.name}, parent)", tofile=f"{exp.id}/candidate.py ({exp.name})"))


def _print_diff(archive: Archive, exp: Experiment, run_ref: str) -> int:
    if not exp.parent_id:
        raise UsageError(f"{exp.id} ({exp.proposer or 'no proposer yet'}) has no parent to diff against; "
                         f"`archlab show {run_ref} {exp.id}` prints its code")
    parent = archive.get_experiment(exp.parent_id)
    for who in (exp, parent):
        if not who.code:
            raise UsageError(f"{who.id} has no code yet (stage {who.stage.value}); there is nothing to diff")
    diff = code_diff(exp, parent)
    print(diff.rstrip("\n") if diff else f"{exp.id} has the same code as its parent {parent.id}")
    return 0


def show(args: argparse.Namespace) -> int:
    run_dir = find_run(args.run, args.runs_dir)
    with open_for_reading(run_dir) as archive:
        try:
            exp = archive.get_experiment(args.experiment)
        except ExperimentNotFoundError as error:
            raise UsageError(f"{error} (see `archlab ls {args.run}`)") from error
        if args.diff:
            if args.json:
                raise UsageError("--diff prints a unified diff; leave out --json")
            return _print_diff(archive, exp, args.run)
        calls = archive.llm_calls(experiment_id=exp.id)
    if args.json:
        print(json.dumps(exp.model_dump(mode="json"), indent=2))
        return 0
    print(f"{exp.id} {exp.name}  [{exp.stage.value}{'/' + exp.status if exp.status else ''}]  fitness {_fitness(exp)}")
    print(f"proposer: {exp.proposer}  parent: {exp.parent_id or '-'}  references: {', '.join(exp.reference_ids) or '-'}")
    if exp.reason:
        print(f"reason: {exp.reason}")
    for title, text in (("motivation", exp.motivation), ("plan", exp.plan)):
        if text:
            print(f"\n{title}:\n{text}")
    metrics = exp.metrics.get("metrics")
    if metrics:
        print("\nmetrics:\n" + json.dumps(metrics, indent=2))
    if exp.analysis:
        print("\nanalysis:\n" + json.dumps(exp.analysis, indent=2))
    print(f"\ntimings: {json.dumps(exp.timings)}  LLM calls: {len(calls)}  cost: ${exp.cost_usd:.4f}")
    if exp.code:
        print(f"\ncode ({run_dir / 'experiments' / exp.id / 'candidate.py'}):\n{exp.code}")
    return 0
