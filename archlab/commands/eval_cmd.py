"""`archlab eval TARGET`: check, train and benchmark one candidate file or reference in the sandbox.

Progress goes to stderr (`archlab.eval_progress`); stdout holds only the result. `--vs-baseline`
also evaluates the task's baseline in the same call, with the same task, budget, device, seed,
data and threads, and scores the target against it with the run's own fitness (`relative_fitness`).
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archlab.errors import UsageError

if TYPE_CHECKING:  # the CLI imports this module on every start: the evaluator only when a command runs
    from archlab.eval_progress import EvalProgress
    from evaluator.records import EvalResult
    from knowledge.records import Fitness


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="evaluate one candidate file or reference")
    parser.add_argument("target", help="a candidate .py file or a reference name (see `archlab references`)")
    parser.add_argument("--task", default="mqar", help="mqar or bytelm (default: mqar)")
    parser.add_argument("--budget", default="smoke", help="smoke, cpu or gpu (default: smoke)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, help="bytelm only: a text file or folder to train on")
    parser.add_argument("--out", type=Path, help="directory for eval.json and logs (the baseline's go to OUT/baseline)")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object (the eval.json content, "
                        "with `vs_baseline` added under --vs-baseline); progress only on a terminal's stderr")
    parser.add_argument("--vs-baseline", action="store_true", help="also evaluate the task's baseline here, on the "
                        "same device and seed, and report fitness against it")
    parser.set_defaults(handler=run)


@dataclass(frozen=True)
class Comparison:
    """The target against the task's baseline, both evaluated in this call."""

    baseline: str                    # the reference's name
    result: EvalResult | None        # the baseline's evaluation; None when it was not evaluated
    fitness: Fitness | None          # None when either side failed
    why_none: str = ""
    is_target: bool = False          # the target is the baseline: one evaluation, fitness 0 by definition

    def to_dict(self) -> dict[str, Any]:
        fitness = None if self.fitness is None else {
            "value": self.fitness.value, "stderr": self.fitness.stderr, "seeds": self.fitness.seeds}
        return {"baseline": self.baseline, "fitness": fitness, "reason": self.why_none, "is_target": self.is_target,
                "result": self.result.to_dict() if self.result is not None and not self.is_target else None}

    def summary(self) -> str:
        if self.fitness is None:
            return f"fitness vs baseline {self.baseline}: none: {self.why_none}"
        if self.is_target:
            return f"fitness vs baseline {self.baseline}: {self.fitness.value:+.4f} (the target is the baseline)"
        return (f"fitness vs baseline {self.baseline}: {self.fitness.value:+.4f} (positive: better than the "
                f"baseline; {self.fitness.seeds} seed, so no uncertainty: a run adds seeds for that)")


def run(args: argparse.Namespace) -> int:
    from archlab.devices import check_data, check_device
    from archlab.rundir import writable_dir

    check_device(args.device)  # usage first, before the evaluator's imports
    if args.data is not None:
        check_data(args.data)
    if args.out is not None:
        writable_dir(args.out, "output directory (--out)")
    from archlab.eval_progress import eval_progress
    from archlab.summaries import eval_summary

    progress = eval_progress(sys.stderr, json_output=args.json)
    try:
        result = _evaluate(args, args.target, args.out, progress, "target" if args.vs_baseline else "")
        comparison = _compare(args, result, progress) if args.vs_baseline else None
    finally:
        if progress is not None:
            progress.close()
    if args.json:
        record = result.to_dict()
        if comparison is not None:
            record["vs_baseline"] = comparison.to_dict()
        print(json.dumps(record, indent=2, sort_keys=True))
    else:
        print(eval_summary(result))
        if comparison is not None:
            if comparison.result is not None and not comparison.is_target:
                print(f"\nbaseline {comparison.baseline}:\n{eval_summary(comparison.result)}")
            print(f"\n{comparison.summary()}")
    baseline_failed = comparison is not None and comparison.result is not None and not comparison.result.ok
    return 0 if result.ok and not baseline_failed else 1


def _evaluate(args: argparse.Namespace, target: str, out: Path | None, progress: EvalProgress | None,
              label: str) -> EvalResult:
    from evaluator.evaluate import evaluate

    if progress is not None:
        progress.label(label)
    try:
        return evaluate(target, task=args.task, budget=args.budget, device=args.device, seed=args.seed,
                        out_dir=out, data=args.data, on_progress=progress)
    except OSError as error:  # a system error's args[0] is its errno: say which file and what went wrong
        message = f"{error.filename or target}: {error.strerror}" if error.strerror else str(error.args[0])
        raise UsageError(message) from error
    except (KeyError, ValueError) as error:
        raise UsageError(error.args[0] if error.args else str(error)) from error


def _compare(args: argparse.Namespace, result: EvalResult, progress: EvalProgress | None) -> Comparison:
    """Evaluate the baseline (unless the target is it, or failed) and score the target against it."""
    from agents.scoring import relative_fitness
    from evaluator.evaluate import resolve_target
    from evaluator.references import get_reference
    from evaluator.tasks import get_task

    name = get_task(args.task).baseline
    if not result.ok:
        return Comparison(name, None, None, f"the target failed ({result.status.value}), so it has no fitness; "
                          "the baseline was not evaluated")
    # The same file with the same task, budget, device and seed: evaluating it again adds nothing.
    is_target = resolve_target(args.target).path.resolve() == get_reference(name).path.resolve()
    baseline = result if is_target else _evaluate(args, name, args.out / "baseline" if args.out else None, progress,
                                                  f"baseline {name}")
    if not baseline.ok:
        return Comparison(name, baseline, None, f"the baseline failed here ({baseline.status.value}: "
                          f"{baseline.reason}); fitness is measured against it, so there is none")
    fitness = relative_fitness(args.task, [result.metrics], [baseline.metrics], None)
    return Comparison(name, baseline, fitness, is_target=is_target)
