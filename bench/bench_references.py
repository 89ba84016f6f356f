"""Every reference evaluated on one task and budget, side by side: the table that shows a budget
can rank candidates (softmax attention, the quality ceiling, should clearly beat linear attention).

    python bench/bench_references.py --task mqar --budget cpu [--device cuda] [--seed 0]

Prints one line per reference, then one JSON line of figures.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
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
    args = parser.parse_args()
    figures = {}
    with tempfile.TemporaryDirectory() as scratch:
        for ref in list_references():
            result = evaluate(ref.name, task=args.task, budget=args.budget, device=args.device, seed=args.seed,
                              out_dir=Path(scratch) / ref.name, threads=args.threads)
            headline = result.metrics.get(HEADLINE[args.task])
            figures[ref.name] = {"status": result.status.value, HEADLINE[args.task]: headline,
                                 "by_length": result.metrics.get("accuracy_by_length"),
                                 "train_steps": result.metrics.get("train_steps"),
                                 "tokens_per_s": round(result.train_tokens_per_second or 0),
                                 "seconds": round(result.timings.get("total", 0.0), 1), "parameters": result.parameters}
            shown = f"{headline:.4f}" if isinstance(headline, float) else str(headline)
            print(f"{ref.name:<24} {result.status.value:<8} {HEADLINE[args.task]} {shown:<8} "
                  f"steps {figures[ref.name]['train_steps']} {figures[ref.name]['seconds']} s", flush=True)
    print(json.dumps({"task": args.task, "budget": args.budget, "device": args.device, "seed": args.seed,
                      "references": figures}))


if __name__ == "__main__":
    main()
