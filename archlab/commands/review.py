"""`archlab review RUN [EXP --approve | --reject NOTE | --replace FILE | --idea TEXT]`.

Without a decision it lists the candidates waiting for one. A decision is written to the
archive; the running (or resumed) run picks it up and continues that experiment.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError

from archlab.errors import UsageError, validation_problems
from archlab.rundir import find_run, load_run_config, open_for_reading, open_for_writing
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
    parser.add_argument("--note", help="with --replace: what your file tries (its motivation; default: the file's "
                        "docstring)")
    parser.add_argument("--name", help="with --replace: the design's name (default: the file's name)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.set_defaults(handler=run)


DECISIONS = "--approve, --reject NOTE, --replace FILE [--note TEXT] or --idea TEXT"


def _decision(args: argparse.Namespace, exp_id: str):
    from agents.review import ReviewDecision

    if (args.note is not None or args.name is not None) and args.replace is None:
        raise UsageError("--note and --name go with --replace FILE (a rejection's note is --reject NOTE)")
    try:
        if args.approve:
            return ReviewDecision(action="approve")
        if args.reject is not None:
            if not args.reject.strip():
                raise UsageError("--reject needs a note saying why, e.g. --reject \"repeats e0003\"; the run "
                                 "records it as the experiment's reason")
            return ReviewDecision(action="reject", note=args.reject)
        if args.replace is not None:
            return _replacement(args, exp_id)
        if args.idea is not None:
            return ReviewDecision(action="idea", note=args.idea)
    except ValidationError as error:
        raise UsageError(validation_problems(error)) from error
    raise UsageError(f"give a decision for {exp_id}: {DECISIONS}")


def _replacement(args: argparse.Namespace, exp_id: str):
    """A person's file, named and motivated by the person: it is what is trained and analysed."""
    from agents.review import ReviewDecision, docstring_of
    from agents.config import NAME_PATTERN

    path: Path = args.replace
    if not path.is_file():
        raise UsageError(f"--replace {path}: no such file")
    try:
        code = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"--replace {path}: cannot read it as text ({error})") from error
    note = (args.note if args.note is not None else docstring_of(code)).strip()
    if not note:
        raise UsageError(f"--replace {path}: say what your file tries with --note TEXT (or give it a docstring); "
                         "it becomes the experiment's motivation")
    name = args.name or (path.stem if path.stem != "candidate" else f"{exp_id}-person")
    if not NAME_PATTERN.match(name):
        raise UsageError(f"--name {name!r}: use letters, digits, '.', '_' and '-' (at most 64 characters)")
    return ReviewDecision(action="replace", code=code, note=note, name=name)


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
    with open_for_reading(run_dir) as archive:
        waiting = [e for e in archive.experiments(run=name) if e.stage is Stage.AWAITING_REVIEW]
    waiting_ids = ", ".join(e.id for e in waiting) or "none"
    if args.experiment is None:
        if args.approve or any(v is not None for v in (args.reject, args.replace, args.idea)):
            example = waiting[0].id if waiting else "e0007"
            raise UsageError(f"which experiment? give its id before the decision, e.g. `archlab review {args.run} "
                             f"{example} --approve` (awaiting review: {waiting_ids})")
        if not waiting:
            print("nothing awaits review")
        for exp in waiting:
            print(f"{exp.id} {exp.name}: {exp.motivation[:100]}\n    {run_dir / 'experiments' / exp.id / 'candidate.py'}")
        return 0
    if args.experiment not in {e.id for e in waiting}:
        raise UsageError(f"{args.experiment} is not awaiting review (waiting: {waiting_ids})")
    decision = _decision(args, args.experiment)
    if decision.action == "idea" and config.llm is None:
        _check_offline_idea(decision.note)
    with open_for_writing(run_dir, "a review decision") as archive:
        archive.log_event(Event(run=name, kind="review_decision", message=decision.action,
                                experiment_id=args.experiment, data=decision.model_dump()))
    print(f"{args.experiment}: {decision.action} recorded; the run applies it next")
    return 0
