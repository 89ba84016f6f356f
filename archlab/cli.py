"""`archlab` command line: one sub-command per module in `archlab/commands/`.

Exit codes: 0 success, 1 the thing evaluated failed (its status says why), 2 bad usage or
configuration (the message says what to fix).
"""
from __future__ import annotations

import argparse
import errno
import os
import sqlite3
import sys

from archlab.commands import COMMANDS
from archlab.errors import UsageError


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("archlab")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed: pip install -e .)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="archlab", description="An autonomous laboratory for neural-architecture discovery.")
    parser.add_argument("--version", action="version", version=f"archlab {_version()}")
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
    except OSError as error:  # storage the user pointed at that cannot be written: their fix, not a bug
        if error.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        print(f"archlab {args.command}: cannot write {error.filename or 'a file'}: {error.strerror}; "
              "point the command at a writable place (e.g. --runs-dir, --out) or fix the permissions", file=sys.stderr)
        return 2
    except sqlite3.OperationalError as error:
        if "readonly" not in str(error):
            raise
        print(f"archlab {args.command}: the archive is on read-only storage ({error}); status, ls and show "
              "work there, commands that record something need a writable copy", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `archlab show ... | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
