"""Every reference evaluated on one task and budget, side by side: the table that shows a budget
can rank candidates (softmax attention, the quality ceiling, should clearly beat linear attention).

    python bench/bench_references.py --task mqar --budget cpu [--device cuda] [--seed 0] [--jobs 4]

Prints one line per reference, then one JSON line of figures. `--jobs` evaluates that many references at
once (each in its own sandbox with `--threads` threads): on a many-core machine the table takes minutes.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluator.evaluate import evaluate  # noqa: E402
from evaluator.references import list_references  # noqa: E402

HEADLINE = {"mqar": "accuracy", "bytelm": "val_bpb"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mqar")
    parser.add_argument("--budget", default="cpu")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--jobs", type=int, default=1, help="references evaluated at once")
    parser.add_argument("--only", nargs="*", help="evaluate only these references")
    args = parser.parse_args()
    references = [ref.name for ref in list_references() if not args.only or ref.name in args.only]
    figures = {}
    with tempfile.TemporaryDirectory() as scratch, ThreadPoolExecutor(max(1, args.jobs)) as pool:
        def run(name: str) -> tuple[str, dict]:
            result = evaluate(name, task=args.task, budget=args.budget, device=args.device, seed=args.seed,
                              out_dir=Path(scratch) / name, threads=args.threads)
            checks = sum(c.seconds for c in result.checks)
            return name, {"status": result.status.value, "reason": result.reason[:200],
                          HEADLINE[args.task]: result.metrics.get(HEADLINE[args.task]),
                          "by_length": result.metrics.get("accuracy_by_length"),
                          "train_steps": result.metrics.get("train_steps"),
                          "tokens_per_s": round(result.train_tokens_per_second or 0),
                          "checks_s": round(checks, 2), "train_s": round(result.timings.get("train", 0.0), 1),
                          "seconds": round(result.timings.get("total", 0.0), 1), "parameters": result.parameters}
        for name, figure in pool.map(run, references):
            figures[name] = figure
            headline = figure[HEADLINE[args.task]]
            shown = f"{headline:.4f}" if isinstance(headline, float) else str(headline)
            print(f"{name:<24} {figure['status']:<8} {HEADLINE[args.task]} {shown:<8} steps {figure['train_steps']} "
                  f"checks {figure['checks_s']} s, total {figure['seconds']} s", flush=True)
    print(json.dumps({"task": args.task, "budget": args.budget, "device": args.device, "seed": args.seed,
                      "references": figures}))


if __name__ == "__main__":
    main()
