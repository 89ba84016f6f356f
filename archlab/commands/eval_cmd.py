"""`archlab eval TARGET`: check, train and benchmark one candidate file or reference in the sandbox."""
from __future__ import annotations

import argparse
from pathlib import Path

from archlab.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="evaluate one candidate file or reference")
    parser.add_argument("target", help="a candidate .py file or a reference name (see `archlab references`)")
    parser.add_argument("--task", default="mqar", help="mqar or bytelm (default: mqar)")
    parser.add_argument("--budget", default="smoke", help="smoke, cpu or gpu (default: smoke)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, help="bytelm only: a text file or folder to train on")
    parser.add_argument("--out", type=Path, help="directory for eval.json and logs")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object (the eval.json content)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from archlab.devices import check_data, check_device
    from archlab.rundir import writable_dir

    check_device(args.device)  # usage first, before the evaluator's imports
    if args.data is not None:
        check_data(args.data)
    if args.out is not None:
        writable_dir(args.out, "output directory (--out)")
    from archlab.summaries import eval_summary
    from evaluator.evaluate import evaluate

    try:
        result = evaluate(args.target, task=args.task, budget=args.budget, device=args.device,
                          seed=args.seed, out_dir=args.out, data=args.data)
    except OSError as error:  # a system error's args[0] is its errno: say which file and what went wrong
        message = f"{error.filename or args.target}: {error.strerror}" if error.strerror else str(error.args[0])
        raise UsageError(message) from error
    except (KeyError, ValueError) as error:
        raise UsageError(error.args[0] if error.args else str(error)) from error
    print(result.to_json() if args.json else eval_summary(result))
    return 0 if result.ok else 1
