"""`archlab references`: the hand-written candidates shipped with the project."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("references", help="list the reference candidates and their files")
    parser.add_argument("--family", default="mixer")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from evaluator.references import list_references

    references = list_references(args.family)
    width = max(len(r.name) for r in references)
    for ref in references:
        marker = "  (quadratic: the quality ceiling)" if ref.quadratic else ""
        print(f"{ref.name:<{width}}  {ref.path}{marker}\n{'':<{width}}  {ref.summary}")
    return 0
