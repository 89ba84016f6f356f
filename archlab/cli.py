"""`archlab` command line: one sub-command per module in `archlab/commands/`.

Exit codes: 0 success, 1 the thing evaluated failed (its status says why), 2 bad usage or
configuration (the message says what to fix).
"""
from __future__ import annotations

import argparse
import os
import sys

from archlab.commands import COMMANDS
from archlab.errors import UsageError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="archlab", description="An autonomous laboratory for neural-architecture discovery.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except UsageError as error:
        print(f"archlab {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `archlab show ... | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
