"""`archlab serve` at scale: server time of each page and of the API on a synthetic run of
2,000 experiments (written through the archive's API), measured in process through the ASGI
test client (no network). Prints one JSON line: per route and mode, the median and p90 wall
milliseconds and the median CPU milliseconds (what a request costs on a machine shared with
other work, where wall times mostly measure waiting for a core).

"warm": the same server asked again (its snapshot of the unchanged archive is reused, as while
a person browses a finished run); "cold": an event is written to the archive before each request
(as after most writes of a running run): the server finds no experiment changed and keeps all it
derived; "cold_write": an LLM call of the experiment in flight is recorded before each request,
so that experiment's row and the run's spend change: the server decodes that one experiment
again and re-derives the summary from the kept rows; the lineage and the plots, whose inputs
did not change, are kept; "cold_finish": the last proposal gets a new fitness before each
request, so the summary, the lineage and the plots that show it are made again (as when a
proposal finishes, every minute or so). Goal: <= 200 ms median per page.

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
from knowledge.records import Event, Fitness, LLMCall  # noqa: E402
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


def _finish(archive: Archive, n: int) -> None:
    """The last proposal is scored again: a new fitness on the dashboard's plot and in the tree."""
    exp_id = f"e{n - 4:04d}"
    fitness = archive.get_experiment(exp_id).fitness
    archive.update_experiment(exp_id, fitness=Fitness(value=(fitness.value if fitness else 0.0) + 0.001, stderr=0.01))


WRITES = {  # mode -> what is written to the archive (of a run of n experiments) before each request
    "cold": lambda archive, n: archive.log_event(Event(run=RUN, kind="bench", message="the run wrote something")),
    "cold_write": lambda archive, n: archive.record_llm_call(LLMCall(
        run=RUN, experiment_id=f"e{n:04d}", role="coder", model="bench", prompt=[{"role": "user", "content": "fix"}],
        response="done", prompt_tokens=10, completion_tokens=5, cost_usd=0.001)),  # the experiment in flight
    "cold_finish": _finish,
}


def percentiles(samples: list[tuple[float, float]]) -> dict[str, float]:
    """Median and p90 of the wall times, and the median CPU time (this process's, both threads:
    the client's and the app's): on a machine shared with other work the CPU time is what the
    server would take alone."""
    walls = sorted(wall for wall, _ in samples)
    return {"median_ms": round(statistics.median(walls) * 1e3, 1),
            "p90_ms": round(walls[min(len(walls) - 1, int(0.9 * len(walls)))] * 1e3, 1),
            "cpu_median_ms": round(statistics.median(cpu for _, cpu in samples) * 1e3, 1)}


def timed(client: TestClient, path: str) -> tuple[float, float]:
    """(wall, CPU) seconds of one request."""
    start, cpu = time.perf_counter(), time.process_time()
    answer = client.get(path)
    elapsed, used = time.perf_counter() - start, time.process_time() - cpu
    assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
    return elapsed, used


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
            figures[name] = {"warm": percentiles(warm)}
            for mode, write in WRITES.items():
                cold = []
                for _ in range(args.cold_repeats):
                    with Archive.open(runs_dir / RUN) as archive:
                        write(archive, args.n)
                    cold.append(timed(warm_client, path))
                figures[name][mode] = percentiles(cold)
    pages = [k for k in figures if not k.startswith("api_")]
    print(json.dumps({
        "experiments": args.n, "build_s": round(built, 1), "routes": figures,
        **{f"pages_{mode}_median_max_ms": max(figures[k][mode]["median_ms"] for k in pages) for mode in ("warm", *WRITES)},
        **{f"pages_{mode}_cpu_median_max_ms": max(figures[k][mode]["cpu_median_ms"] for k in pages)
           for mode in ("warm", *WRITES)},
        "goal_median_ms": 200,
    }))


if __name__ == "__main__":
    main()
