"""`archlab report RUN [-o FILE] [--format html|md] [--top N] [--no-plots]`: a run as a researcher would
publish it. HTML is one file that opens offline (styles and plots inline); Markdown is for notes,
its plots as SVG files in NAME_plots/ beside it."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from archlab.errors import UsageError
from archlab.rundir import find_run


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="a run's results as one self-contained HTML file (or Markdown)")
    parser.add_argument("run", help="run directory or name")
    parser.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="where to write it (default: RUN-report.html or .md in the current directory)")
    parser.add_argument("--format", choices=("html", "md"), help="default: from the output's suffix, else html")
    parser.add_argument("--top", type=int, default=5, metavar="N",
                        help="how many of the fittest proposals to show in full and trace in the lineage tree")
    parser.add_argument("--no-plots", action="store_true", help="Markdown only: write no SVG files beside it")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.set_defaults(handler=run)


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    return "md" if args.output and args.output.suffix.lower() in (".md", ".markdown") else "html"


def run(args: argparse.Namespace) -> int:
    from archlab.insights.snapshot import load_snapshot
    from archlab.report.build import build_report
    from archlab.report.render import write_report

    if args.top < 1:
        raise UsageError(f"--top {args.top}: give at least 1")
    fmt = _format(args)
    if args.no_plots and fmt != "md":
        raise UsageError("--no-plots is for --format md (the HTML report carries its plots inline)")
    started = time.monotonic()
    run_dir = find_run(args.run, args.runs_dir)
    snapshot = load_snapshot(run_dir)
    output = args.output or Path(f"{run_dir.name}-report.{fmt}")
    if output.is_dir():
        example = output / f"{run_dir.name}.{fmt}"
        raise UsageError(f"{output} is a directory; give a file name with -o, e.g. -o {example}")
    report = build_report(snapshot, top=args.top)
    output.parent.mkdir(parents=True, exist_ok=True)
    written = write_report(report, output, fmt, with_plots=not args.no_plots)
    seconds = time.monotonic() - started
    extra = f" and {len(written) - 1} plots in {written[1].parent}" if len(written) > 1 else ""
    print(f"report of run {snapshot.name} ({len(snapshot.experiments)} experiments) written to {output}{extra} "
          f"in {seconds:.1f} s", file=sys.stderr)
    return 0
