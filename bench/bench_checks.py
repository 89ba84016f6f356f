"""The checks' share of an evaluation: seconds of checks against seconds of training, per budget.

    python bench/bench_checks.py [--budgets smoke cpu] [--device cuda] [--references gated_delta_rule ...]

Every check (the screen, the checks before training and the re-check of the trained model) is timed
by the evaluation itself; this prints them beside the training time and the whole evaluation, one
line per reference and budget, then one JSON line of figures. Goal: checks at most 10% of a `cpu`
evaluation.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluator.evaluate import evaluate  # noqa: E402

DEFAULT_REFERENCES = ("gated_delta_rule", "softmax_attention", "delta_rule")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mqar")
    parser.add_argument("--budgets", nargs="+", default=["smoke", "cpu"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--references", nargs="+", default=list(DEFAULT_REFERENCES))
    args = parser.parse_args()
    figures: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for budget in args.budgets:
            for name in args.references:
                result = evaluate(name, task=args.task, budget=budget, device=args.device,
                                  out_dir=Path(scratch) / f"{budget}-{name}", threads=args.threads)
                checks = {c.name: round(c.seconds, 3) for c in result.checks}
                checks_seconds = sum(checks.values())
                total = result.timings.get("total", 0.0)
                figure = {"status": result.status.value, "checks_s": round(checks_seconds, 2),
                          "train_s": round(result.timings.get("train", 0.0), 2), "total_s": round(total, 2),
                          "checks_share": round(checks_seconds / total, 4) if total else None, "per_check_s": checks}
                figures[f"{budget}/{name}"] = figure
                print(f"{budget:<6} {name:<20} {figure['status']:<8} checks {figure['checks_s']:>6.2f} s  "
                      f"train {figure['train_s']:>7.2f} s  total {figure['total_s']:>7.2f} s  "
                      f"share {100 * (figure['checks_share'] or 0):.1f}%", flush=True)
    print(json.dumps({"task": args.task, "device": args.device, "figures": figures}))


if __name__ == "__main__":
    main()
