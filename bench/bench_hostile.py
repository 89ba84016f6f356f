"""Every candidate file of a folder evaluated through the full judge: the table of statuses and reasons.

    python bench/bench_hostile.py [--folder tests/candidates] [--device cuda] [--jobs 4]

The hostile and unusual candidates of the test suite, each through the screen, the sandbox and the
checks at one budget (smoke by default), so the same table can be read on this machine and on a GPU
host. Prints one line per candidate (status, seconds, the first line of the reason), then one JSON line.
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

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=ROOT / "tests" / "candidates")
    parser.add_argument("--task", default="mqar")
    parser.add_argument("--budget", default="smoke")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--patterns", nargs="+", default=["*.py"], help="file name patterns to evaluate")
    args = parser.parse_args()
    files = sorted({path for pattern in args.patterns for path in args.folder.glob(pattern)})
    with tempfile.TemporaryDirectory() as scratch, ThreadPoolExecutor(max(1, args.jobs)) as pool:
        def run(path: Path) -> tuple[str, dict]:
            result = evaluate(path, task=args.task, budget=args.budget, device=args.device,
                              out_dir=Path(scratch) / path.stem, threads=args.threads)
            first_line = (result.reason.strip().splitlines() or [""])[0]
            return path.stem, {"status": result.status.value, "reason": first_line[:160],
                               "seconds": round(result.timings.get("total", 0.0), 1)}
        rows = dict(pool.map(run, files))
    for name, row in rows.items():
        print(f"{name:<34} {row['status']:<12} {row['seconds']:>6.1f} s  {row['reason']}")
    print(json.dumps({"task": args.task, "budget": args.budget, "device": args.device, "candidates": rows}))


if __name__ == "__main__":
    main()
