"""`archlab knowledge add PATH` and `archlab knowledge search QUERY`: the cognition base and your notes,
and with `--runs` also what the analysts learned in every run of the runs directory."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from archlab.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("knowledge", help="add notes to, or search, the knowledge base")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="bring in Markdown, text or PDF notes (a file or a folder)")
    add.add_argument("path", type=Path)
    search = actions.add_parser("search", help="the closest insights to a query, with scores")
    search.add_argument("query")
    search.add_argument("--k", type=int, default=5)
    search.add_argument("--json", action="store_true")
    search.add_argument("--runs", action="store_true", help="also search the analysts' findings in every run of "
                        "the runs directory (each opened read-only; an unreadable run is skipped with a note)")
    for sub in (add, search):
        sub.add_argument("--runs-dir", type=Path, default=Path("runs"), help="the knowledge home is RUNS_DIR/_knowledge")
    add.set_defaults(handler=add_notes)
    search.set_defaults(handler=search_knowledge)


def add_notes(args: argparse.Namespace) -> int:
    from archlab.knowledge_home import open_home
    from knowledge.notes import import_notes

    if not args.path.exists():
        raise UsageError(f"{args.path} does not exist")
    with open_home(args.runs_dir) as (archive, store):
        report = import_notes(args.path, archive, store)
    print(f"{len(report.files)} files: {report.added} insights added, {report.unchanged} unchanged, "
          f"{report.removed} removed")
    for skipped in report.skipped:
        print(f"  skipped {skipped}")
    return 0 if report.files or not report.skipped else 1


def search_knowledge(args: argparse.Namespace) -> int:
    from archlab.run_lessons import RunsSearch, from_home, search_runs

    if args.k < 1:
        raise UsageError("--k must be at least 1")
    if not args.query.strip():
        raise UsageError("the query is empty; say what you are looking for, e.g. \"recall with a fixed-size state\"")
    result = RunsSearch()
    try:
        result.found += [from_home(hit) for hit in _search_home(args.runs_dir, args.query, args.k)]
    except Exception as error:  # noqa: BLE001 - with --runs the runs are still worth searching
        if not args.runs:
            raise
        result.skipped.append(f"the knowledge home {args.runs_dir / '_knowledge'}: {type(error).__name__}: {error}")
    if args.runs:
        if not args.runs_dir.is_dir():
            raise UsageError(f"no runs directory {args.runs_dir}; give one with --runs-dir")
        from_runs = search_runs(args.runs_dir, args.query, args.k)
        result.found += from_runs.found
        result.skipped += from_runs.skipped
    found = sorted(result.found, key=lambda hit: -hit.score)[:args.k]
    for note in result.skipped:
        print(f"skipped {note}", file=sys.stderr)
    if args.json:
        print(json.dumps([{"score": round(h.score, 4), "title": h.title, "source": h.source, "run": h.run or None,
                           "experiment_id": h.experiment_id, "fitness": h.fitness, "text": h.text} for h in found],
                         indent=2))
        return 0
    for hit in found:
        where = f" run {hit.run} {hit.experiment_id}" if hit.run else ""
        fitness = f" (fitness {hit.fitness:+.4f})" if hit.fitness is not None else ""
        text = hit.text.replace("\n", " ")
        print(f"{hit.score:.3f}  [{hit.source}]{where} {hit.title}{fitness}\n"
              f"       {text[:160]}{'...' if len(text) > 160 else ''}")
    if not found:
        print("nothing found" + ("" if args.runs else "; --runs also searches what the analysts learned in runs"))
    return 0


def _search_home(runs_dir: Path, query: str, k: int) -> list:
    from archlab.knowledge_home import open_home

    with open_home(runs_dir) as (_archive, store):
        return store.search(query, k=k)
