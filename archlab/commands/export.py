"""`archlab export RUN --format csv|jsonl [--with-code] [-o FILE]`: one record per experiment, for
pandas and notebooks. Every field the archive holds for an experiment, except its code unless
asked; JSON Lines keeps the nesting, CSV flattens it to dotted columns (lists as JSON text)."""
from __future__ import annotations

import argparse
import csv
import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Iterable, TextIO

from archlab.rundir import find_run, load_run_config, open_for_reading


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="a run's experiments as CSV or JSON Lines, one record each")
    parser.add_argument("run", help="run directory or name")
    parser.add_argument("--format", choices=("csv", "jsonl"), default="jsonl")
    parser.add_argument("--with-code", action="store_true", help="include each candidate's source")
    parser.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here (default: standard output)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.set_defaults(handler=run)


def records(experiments: Iterable[Any], with_code: bool) -> list[dict[str, Any]]:
    dropped = set() if with_code else {"code"}
    return [exp.model_dump(mode="json", exclude=dropped) for exp in experiments]


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested tables as dotted columns (`metrics.metrics.accuracy`); lists as JSON text."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (dict, list)):
            flat[name] = json.dumps(value)
        else:
            flat[name] = value
    return flat


def write_csv(rows: list[dict[str, Any]], out: TextIO) -> None:
    flat = [flatten(row) for row in rows]
    columns = list(dict.fromkeys(key for row in flat for key in row))
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="raise", lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)


def write_jsonl(rows: list[dict[str, Any]], out: TextIO) -> None:
    for row in rows:
        out.write(json.dumps(row, sort_keys=True) + "\n")


def run(args: argparse.Namespace) -> int:
    run_dir = find_run(args.run, args.runs_dir)
    config = load_run_config(run_dir)
    with open_for_reading(run_dir) as archive:
        rows = records(archive.experiments(run=config.name), args.with_code)
    target = args.output.open("w", newline="") if args.output else nullcontext(sys.stdout)
    with target as out:
        (write_csv if args.format == "csv" else write_jsonl)(rows, out)
    if args.output:
        print(f"{len(rows)} experiments of run {config.name} written to {args.output} ({args.format})", file=sys.stderr)
    return 0
