"""`archlab serve` at scale: server time of each page and of the API on a synthetic run of
2,000 experiments (written through the archive's API), measured in process through the ASGI
test client (no network). Prints one JSON line: median and p90 milliseconds per route.

"warm": the same server asked again (its snapshot of the unchanged archive is reused, as while
a person browses a finished run); "cold": an event is written to the archive before each request,
so the server reads the whole run again and redraws its plots (as after every write of a running
run). Goal: <= 200 ms median per page.

    .venv/bin/python bench/bench_web.py              # 2,000 experiments
    .venv/bin/python bench/bench_web.py --n 500 --repeats 5
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fastapi.testclient import TestClient  # noqa: E402

from archlab.web.app import create_app  # noqa: E402
from knowledge.archive import Archive  # noqa: E402
from knowledge.records import Event  # noqa: E402
from tests.web_support import synthetic_run  # noqa: E402

RUN = "bench"


def routes(n: int) -> dict[str, str]:
    last = f"e{n + 2:04d}"
    return {
        "runs": "/", "dashboard": f"/runs/{RUN}", "experiments": f"/runs/{RUN}/experiments",
        "experiments_sorted_filtered": f"/runs/{RUN}/experiments?sort=fitness&outcome=ok&references=false",
        "experiment": f"/runs/{RUN}/experiments/{last}", "tree": f"/runs/{RUN}/tree",
        "compare": f"/runs/{RUN}/compare?a=e0003&b={last}",
        "api_summary": f"/api/runs/{RUN}", "api_experiments": f"/api/runs/{RUN}/experiments",
        "api_experiment": f"/api/runs/{RUN}/experiments/{last}", "api_tree": f"/api/runs/{RUN}/tree",
        "api_version": f"/api/runs/{RUN}/version",
    }


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"median_ms": round(statistics.median(ordered) * 1e3, 1),
            "p90_ms": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))] * 1e3, 1)}


def timed(client: TestClient, path: str) -> float:
    start = time.perf_counter()
    answer = client.get(path)
    elapsed = time.perf_counter() - start
    assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="proposals in the synthetic run")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--cold-repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = Path(tmp) / "runs"
        started = time.perf_counter()
        synthetic_run(runs_dir, RUN, proposals=args.n - 6, hostile=False)  # + 6 references and review states
        built = time.perf_counter() - started
        warm_client = TestClient(create_app(runs_dir), base_url="http://localhost")
        figures: dict[str, dict] = {}
        for name, path in routes(args.n - 6).items():
            timed(warm_client, path)  # first view fills the cache
            warm = [timed(warm_client, path) for _ in range(args.repeats)]
            cold = []
            for _ in range(args.cold_repeats):
                with Archive.open(runs_dir / RUN) as archive:
                    archive.log_event(Event(run=RUN, kind="bench", message="the run wrote something"))
                cold.append(timed(warm_client, path))
            figures[name] = {"warm": percentiles(warm), "cold": percentiles(cold)}
    pages = [k for k in figures if not k.startswith("api_")]
    print(json.dumps({
        "experiments": args.n, "build_s": round(built, 1), "routes": figures,
        "pages_warm_median_max_ms": max(figures[k]["warm"]["median_ms"] for k in pages),
        "pages_cold_median_max_ms": max(figures[k]["cold"]["median_ms"] for k in pages),
        "goal_median_ms": 200,
    }))


if __name__ == "__main__":
    main()
