"""`archlab review RUN [EXP --approve | --reject NOTE | --replace FILE | --idea TEXT]`.

Without a decision it lists the candidates waiting for one. A decision is written to the
archive; the running (or resumed) run picks it up and continues that experiment.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError

from archlab.errors import UsageError
from archlab.rundir import find_run, load_run_config
from knowledge.archive import Archive
from knowledge.records import Event, Stage


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("review", help="list candidates awaiting review, or decide on one")
    parser.add_argument("run", help="run directory or name")
    parser.add_argument("experiment", nargs="?", help="experiment id to decide on")
    decision = parser.add_mutually_exclusive_group()
    decision.add_argument("--approve", action="store_true")
    decision.add_argument("--reject", metavar="NOTE")
    decision.add_argument("--replace", metavar="FILE", type=Path, help="train this file instead")
    decision.add_argument("--idea", metavar="TEXT", help="discard this candidate; the researcher starts from the idea")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.set_defaults(handler=run)


def _decision(args: argparse.Namespace):
    from agents.review import ReviewDecision

    try:
        if args.approve:
            return ReviewDecision(action="approve")
        if args.reject is not None:
            return ReviewDecision(action="reject", note=args.reject)
        if args.replace is not None:
            if not args.replace.is_file():
                raise UsageError(f"--replace {args.replace}: no such file")
            return ReviewDecision(action="replace", code=args.replace.read_text())
        if args.idea is not None:
            return ReviewDecision(action="idea", note=args.idea)
    except ValidationError as error:
        raise UsageError(error.errors()[0]["msg"]) from error
    raise UsageError("give a decision: --approve, --reject NOTE, --replace FILE or --idea TEXT")


def _check_offline_idea(idea: str) -> None:
    """The offline researcher acts on the gene settings an idea names: refuse bad ones now, and
    say so when there are none (the candidate is then only re-drawn)."""
    from agents.offline.genome import GENES, GenomeError
    from agents.offline.ideas import check_idea

    try:
        settings = check_idea(idea)
    except GenomeError as error:
        raise UsageError(f"--idea: {error}") from error
    if not settings:
        print("note: this run's offline researcher reads an idea as gene settings such as "
              f"'update=delta conv=4' (genes: {', '.join(g.name for g in GENES)}); an idea without "
              "any only re-draws the proposal", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    run_dir = find_run(args.run, args.runs_dir)
    config = load_run_config(run_dir)
    name = config.name
    with Archive.open(run_dir / "archive.sqlite") as archive:
        waiting = [e for e in archive.experiments(run=name) if e.stage is Stage.AWAITING_REVIEW]
        if args.experiment is None:
            if not waiting:
                print("nothing awaits review")
            for exp in waiting:
                print(f"{exp.id} {exp.name}: {exp.motivation[:100]}\n    {run_dir / 'experiments' / exp.id / 'candidate.py'}")
            return 0
        if args.experiment not in {e.id for e in waiting}:
            raise UsageError(f"{args.experiment} is not awaiting review (waiting: {', '.join(e.id for e in waiting) or 'none'})")
        decision = _decision(args)
        if decision.action == "idea" and config.llm is None:
            _check_offline_idea(decision.note)
        archive.log_event(Event(run=name, kind="review_decision", message=decision.action,
                                experiment_id=args.experiment, data=decision.model_dump()))
    print(f"{args.experiment}: {decision.action} recorded; the run applies it next")
    return 0
