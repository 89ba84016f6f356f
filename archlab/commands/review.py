"""`archlab review RUN [EXP --approve | --reject NOTE | --replace FILE | --idea TEXT]`.

Without a decision it lists the candidates waiting for one. A decision is written to the
archive; the running (or resumed) run picks it up and continues that experiment.

`record_decision` is the one path by which a decision reaches a run: this command and the web
app (`archlab serve`) both call it, so they check and record decisions identically.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from archlab.errors import UsageError, validation_problems
from archlab.rundir import find_run, load_run_config, open_for_reading, open_for_writing
from knowledge.records import Event, Experiment, Stage

if TYPE_CHECKING:
    from agents.review import ReviewDecision


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


class ReviewConflict(UsageError):
    """The experiment cannot take a decision now: it is not awaiting review, or one is pending."""


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
    path: Path = args.replace
    if not path.is_file():
        raise UsageError(f"--replace {path}: no such file")
    try:
        code = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"--replace {path}: cannot read it as text ({error})") from error
    return replacement_decision(code, exp_id, note=args.note, name=args.name or (
        path.stem if path.stem != "candidate" else None), where=f"--replace {path}", note_hint="--note TEXT")


def replacement_decision(code: str, exp_id: str, note: str | None = None, name: str | None = None,
                         where: str = "the replacement", note_hint: str = "a note") -> ReviewDecision:
    """A replace decision with the person's note (default: the code's docstring) and name (default
    `<exp>-person`); raises UsageError saying what is missing. `where` and `note_hint` word the
    message for the CLI's flags or the web's fields."""
    from agents.config import NAME_PATTERN
    from agents.review import ReviewDecision, docstring_of

    if not code.strip():
        raise UsageError(f"{where}: the code is empty; give the whole candidate file")
    note = (note if note and note.strip() else docstring_of(code)).strip()
    if not note:
        raise UsageError(f"{where}: say what your file tries with {note_hint} (or give it a docstring); "
                         "it becomes the experiment's motivation")
    name = (name or "").strip() or f"{exp_id}-person"
    if not NAME_PATTERN.match(name):
        raise UsageError(f"{where}: name {name!r}: use letters, digits, '.', '_' and '-' (at most 64 characters)")
    return ReviewDecision(action="replace", code=code, note=note, name=name)


def offline_idea_note(idea: str) -> str:
    """The offline researcher acts on the gene settings an idea names: refuse bad ones (UsageError),
    and return a note for the person when there are none (the candidate is then only re-drawn)."""
    from agents.offline.genome import GENES, GenomeError
    from agents.offline.ideas import check_idea

    try:
        settings = check_idea(idea)
    except GenomeError as error:
        raise UsageError(f"--idea: {error}") from error
    if settings:
        return ""
    return ("note: this run's offline researcher reads an idea as gene settings such as "
            f"'update=delta conv=4' (genes: {', '.join(g.name for g in GENES)}); an idea without "
            "any only re-draws the proposal")


def awaiting_review(run_dir: Path) -> list[Experiment]:
    """The run's candidates waiting for a person's decision, in creation order."""
    with open_for_reading(run_dir) as archive:
        return [e for e in archive.experiments(run=load_run_config(run_dir).name) if e.stage is Stage.AWAITING_REVIEW]


def _pending(run_dir: Path, exp_id: str) -> str:
    """The action of a decision recorded for `exp_id` and not applied yet ("" if none)."""
    with open_for_reading(run_dir) as archive:
        events = archive.events(experiment_id=exp_id)
    decisions = [e for e in events if e.kind == "review_decision"]
    applied = sum(e.kind == "review_applied" for e in events)
    return decisions[applied].message if len(decisions) > applied else ""


def record_decision(run_dir: Path, exp_id: str, decision: ReviewDecision) -> str:
    """Check a decision against the run and record it in the archive, where the driver picks it up.

    Raises UsageError (nothing recorded) when the experiment is not awaiting review or already
    has a decision the run has not applied, an offline idea names unknown genes, or replacement
    code fails the static screen (its reason, line by line). Returns a note for the person ("" if
    none)."""
    config = load_run_config(run_dir)
    waiting = [e.id for e in awaiting_review(run_dir)]
    if exp_id not in waiting:
        raise ReviewConflict(f"{exp_id} is not awaiting review (waiting: {', '.join(waiting) or 'none'})")
    pending = _pending(run_dir, exp_id)
    if pending:
        raise ReviewConflict(f"{exp_id} already has a decision ({pending}) that the run has not applied yet; "
                         "a second one would be applied to whatever the first makes of it, so wait for the first")
    note = ""
    if decision.action == "idea" and config.llm is None:
        note = offline_idea_note(decision.note)
    if decision.action == "replace":
        from evaluator.families.mixer import ALLOWED_IMPORTS
        from sandbox.screen import screen_source

        report = screen_source(decision.code, ALLOWED_IMPORTS)
        if not report.passed:
            raise UsageError("the replacement code is refused by the static screen (fix it and decide again; "
                             f"nothing was recorded):\n{report.reason}")
    with open_for_writing(run_dir, "a review decision") as archive:
        archive.log_event(Event(run=config.name, kind="review_decision", message=decision.action,
                                experiment_id=exp_id, data=decision.model_dump()))
    return note


def run(args: argparse.Namespace) -> int:
    run_dir = find_run(args.run, args.runs_dir)
    waiting = awaiting_review(run_dir)
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
    note = record_decision(run_dir, args.experiment, decision)
    if note:
        print(note, file=sys.stderr)
    print(f"{args.experiment}: {decision.action} recorded; the run applies it next")
    return 0
