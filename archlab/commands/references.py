"""`archlab references`: the hand-written candidates shipped with the project."""
from __future__ import annotations

import argparse

from archlab.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("references", help="list the reference candidates and their files")
    parser.add_argument("--family", default="mixer")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from evaluator.references import list_references

    try:
        references = list_references(args.family)
    except KeyError as error:
        raise UsageError(f"--family {args.family}: {error.args[0]}") from error
    width = max(len(r.name) for r in references)
    for ref in references:
        marker = "  (quadratic: the quality ceiling)" if ref.quadratic else ""
        print(f"{ref.name:<{width}}  {ref.path}{marker}\n{'':<{width}}  {ref.summary}")
    return 0
