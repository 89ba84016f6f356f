"""`archlab knowledge add PATH` and `archlab knowledge search QUERY`: the cognition base and your notes."""
from __future__ import annotations

import argparse
import json
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
    from archlab.knowledge_home import open_home

    if args.k < 1:
        raise UsageError("--k must be at least 1")
    with open_home(args.runs_dir) as (_archive, store):
        hits = store.search(args.query, k=args.k)
    if args.json:
        print(json.dumps([{"score": round(h.score, 4), "title": h.title, "source": h.source, "id": h.id,
                           "text": h.text} for h in hits], indent=2))
        return 0
    for hit in hits:
        print(f"{hit.score:.3f}  [{hit.source}] {hit.title}\n       {hit.text[:160].replace(chr(10), ' ')}...")
    return 0
