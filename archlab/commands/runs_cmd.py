"""`archlab runs`: the runs in a runs directory, their standing and whether a driver holds each."""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from archlab.commands.inspect_run import run_status
from archlab.errors import UsageError
from archlab.rundir import CONFIG_FILE, load_run_config, open_for_reading
from archlab.runlock import driver_of


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("runs", help="list the runs in a runs directory")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=run)


@dataclass(frozen=True)
class RunRow:
    name: str
    task: str
    budget: str
    done: int
    planned: int
    best: str            # "e0007 name +0.0123" or "-"
    state: str           # running (a driver holds it), finished, stopped, or new (no archive yet)
    driver: str          # who holds it, or ""
    problem: str = ""    # why the row is incomplete (an unreadable archive)


def describe_run(run_dir: Path) -> RunRow:
    config = load_run_config(run_dir)
    name = config.name or run_dir.name
    holder = driver_of(run_dir)
    done, best, problem = 0, "-", ""
    try:
        with open_for_reading(run_dir) as archive:
            report = run_status(archive, name)
        done = report["finished"]
        if report["best"]:
            best = f"{report['best']['id']} {report['best']['name']} {report['best']['fitness']['value']:+.4f}"
        state = "finished" if done >= config.experiments else "stopped"
    except UsageError as error:
        state, problem = "new", str(error)
    if holder:
        state = "running"
    return RunRow(name=name, task=config.task, budget=config.budget, done=done, planned=config.experiments,
                  best=best, state=state, driver=holder.describe() if holder else "", problem=problem)


def run(args: argparse.Namespace) -> int:
    if not args.runs_dir.is_dir():
        raise UsageError(f"no runs directory {args.runs_dir}; give one with --runs-dir")
    rows = []
    for path in sorted(p for p in args.runs_dir.iterdir() if (p / CONFIG_FILE).is_file()):
        try:
            rows.append(describe_run(path))
        except UsageError as error:  # one broken run does not hide the others
            rows.append(RunRow(name=path.name, task="?", budget="?", done=0, planned=0, best="-", state="unreadable",
                               driver="", problem=str(error)))
    if args.json:
        print(json.dumps([asdict(row) for row in rows], indent=2))
        return 0
    if not rows:
        print(f"no runs in {args.runs_dir}; `archlab run` starts one")
        return 0
    width = max(4, *(len(row.name) for row in rows))
    print(f"{'name':<{width}}  {'task':<7} {'budget':<6} {'done':>9}  {'state':<10} best")
    for row in rows:
        print(f"{row.name:<{width}}  {row.task:<7} {row.budget:<6} {f'{row.done}/{row.planned}':>9}  {row.state:<10} "
              f"{row.best}")
        if row.driver:
            print(f"{'':<{width}}  driven by {row.driver}")
        if row.problem and row.state == "unreadable":
            print(f"{'':<{width}}  {row.problem}")
    return 0
