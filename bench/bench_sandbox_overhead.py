"""Sandbox overhead: seconds from submitting a job to its first line of Python and to `import torch` done.

Compares bubblewrap, the fallback (cgroup + rlimits) and a plain subprocess; prints one JSON line
of medians over `--runs` runs. The sandbox's share of the "submission to first training step
<= 3 s" target is the difference between a mode and the plain subprocess.

    .venv/bin/python bench/bench_sandbox_overhead.py --runs 10
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sandbox.isolation import Isolation  # noqa: E402
from sandbox.job import Limits, SandboxJob  # noqa: E402
from sandbox.runner import run_sandboxed  # noqa: E402

JOB = "import time; print(time.time(), flush=True); import torch; print(time.time(), flush=True)"


def _delays(submitted: float, stdout: str) -> tuple[float, float]:
    first_line, torch_imported = (float(value) for value in stdout.split())
    return first_line - submitted, torch_imported - submitted


def sandboxed(isolation: Isolation, work_dir: Path) -> tuple[float, float]:
    job = SandboxJob(argv=[sys.executable, "-c", JOB], work_dir=work_dir, limits=Limits(wall_seconds=60))
    submitted = time.time()
    outcome = run_sandboxed(job, isolation=isolation)
    if outcome.exit_code != 0:
        raise RuntimeError(f"benchmark job failed under {outcome.isolation}: {outcome.stderr_tail}")
    return _delays(submitted, outcome.stdout_tail)


def plain(work_dir: Path) -> tuple[float, float]:
    submitted = time.time()
    result = subprocess.run([sys.executable, "-c", JOB], cwd=work_dir, capture_output=True, text=True, check=True)
    return _delays(submitted, result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    started = time.perf_counter()
    bwrap = Isolation()
    probe_seconds = time.perf_counter() - started
    modes = {"plain": None, "fallback": Isolation(prefer_bwrap=False)}
    if bwrap.bwrap.program:
        modes["bubblewrap"] = bwrap
    figures: dict[str, object] = {"runs": runs, "isolation_probe_s": round(probe_seconds, 4)}
    with tempfile.TemporaryDirectory(prefix="archlab-bench-") as root:
        for name, isolation in modes.items():
            work_dir = Path(root) / name
            work_dir.mkdir()
            samples = [plain(work_dir) if isolation is None else sandboxed(isolation, work_dir) for _ in range(runs)]
            figures[f"{name}_first_line_s"] = round(statistics.median(s[0] for s in samples), 4)
            figures[f"{name}_torch_imported_s"] = round(statistics.median(s[1] for s in samples), 4)
    for name in ("fallback", "bubblewrap"):
        if f"{name}_first_line_s" in figures:
            figures[f"{name}_overhead_s"] = round(figures[f"{name}_first_line_s"] - figures["plain_first_line_s"], 4)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
