"""Run directories for the web tests, written through the real archive's API, and a real
uvicorn server on a free loopback port for the browser tests."""
from __future__ import annotations

import contextlib
import math
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from agents.config import RunConfig
from knowledge.archive import Archive
from knowledge.records import Event, Experiment, Fitness, LLMCall, Stage
from tests.loop_candidates import CUMULATIVE_MEAN

ROOT = Path(__file__).resolve().parents[1]
ROOT_ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
# What an LLM or a candidate might write to attack the pages.
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
HOSTILE_NAME = 'evil<script>alert(1)</script>$\\frac{'   # also an unbalanced matplotlib formula
CODE = CUMULATIVE_MEAN  # a real candidate, as the loop tests' scripted coder writes it
STATUSES = ["ok", "ok", "ok", "invalid", "leaky", "too_slow", "crashed", "diverged"]


def _metrics(i: int, status: str, loss_nan: bool = False) -> dict:
    curve = [[step, 4.2 - step * 0.01 * (1 + i % 5)] for step in range(0, 60, 5)]
    if loss_nan:
        curve[-1][1] = math.nan
    return {
        "status": status, "reason": "" if status == "ok" else f"{status}: line {i % 40 + 1}: the problem",
        "checks": [{"name": "screen", "passed": True, "reason": "", "seconds": 0.1},
                   {"name": "causality", "passed": status != "leaky",
                    "reason": "" if status != "leaky" else "output at t=3 changes when x[t=9] changes", "seconds": 0.4}],
        "metrics": {"accuracy": 0.05 + (i % 17) / 100, "accuracy_by_length": {"32": 0.1, "64": 0.02}},
        "loss_curve": curve, "parameters": 18000 + 37 * i, "train_tokens_per_second": 9000.0 + 13 * i,
        "inference_latency_ms": {"64": 2.0 + i % 7, "256": 8.0 + i % 11}, "peak_memory_bytes": 2**28,
        "log_tail": f"[worker] done {HOSTILE}", "isolation": "bubblewrap+cgroup+rlimits",
        "seeds": [{"seed": 0, "status": status, "metrics": {"accuracy": 0.05}}],
    }


def synthetic_run(runs_dir: Path, name: str = "synth", proposals: int = 30, hostile: bool = True,
                  review: bool = True) -> Path:
    """A run as a driver leaves it mid-way: references, proposals of every outcome (failed with
    reasons, rejected, awaiting review, in flight), LLM calls and events; hostile text in names,
    motivations, code, analyses and prompts when `hostile`."""
    run_dir = runs_dir / name
    (run_dir / "experiments").mkdir(parents=True)
    config = RunConfig(name=name, runs_dir=runs_dir, task="mqar", budget="smoke", experiments=proposals + 5,
                       review=review)
    (run_dir / "config.json").write_text(config.model_dump_json(indent=2))
    evil = HOSTILE if hostile else ""
    experiments = [
        Experiment(id="e0001", run=name, name="gated_delta_rule", proposer="reference", stage=Stage.ANALYZED,
                   status="ok", fitness=Fitness(value=0.0, stderr=0.01, seeds=2), code=CODE, metrics=_metrics(0, "ok"),
                   motivation="the baseline", timings={"train": 2.0, "evaluate": 5.0}),
        Experiment(id="e0002", run=name, name="softmax_attention", proposer="reference", stage=Stage.ANALYZED,
                   status="ok", fitness=Fitness(value=0.04, stderr=0.01, seeds=2), code=CODE + "# ceiling\n",
                   metrics=_metrics(1, "ok"), timings={"train": 2.0, "evaluate": 5.0}),
    ]
    for i in range(proposals):
        exp_id = f"e{i + 3:04d}"
        status = STATUSES[i % len(STATUSES)]
        parent = "e0001" if i < 3 else f"e{(i * 37 + 11) % i + 3:04d}"  # an earlier proposal
        ok = status == "ok"
        experiments.append(Experiment(
            id=exp_id, run=name, name=(HOSTILE_NAME if hostile and i == 0 else f"design-{i}"), proposer="offline",
            motivation=f"motivation {i}: try a wider state {evil}", plan=f"plan {i} {evil}",
            code=CODE.replace("F.silu(gate)", "torch.tanh(gate)") + f"# variant {i} {evil}\n", parent_id=parent,
            stage=Stage.ANALYZED if ok else Stage.FAILED, status=status,
            reason="" if ok else f"{status}: line {i % 40 + 1}: the problem {evil}",
            fitness=Fitness(value=(i % 9 - 4) / 100, stderr=0.01) if ok else None,
            metrics=_metrics(i, status, loss_nan=status == "diverged"),
            analysis={"summary": f"summary {i} {evil}", "lessons": [f"lesson {evil}"]} if ok else {},
            genome={"update": "delta", "conv": i % 4}, timings={"train": 1.5, "evaluate": 4.0, "propose": 0.2},
            tokens=100 * i, cost_usd=0.001 * i))
    base = proposals + 3
    experiments += [
        Experiment(id=f"e{base:04d}", run=name, name="rejected-one", proposer="offline", parent_id="e0001",
                   motivation="m", code=CODE, stage=Stage.REJECTED, reason=f"rejected in review: repeats e0003 {evil}"),
        Experiment(id=f"e{base + 1:04d}", run=name, name=f"waiting-{evil}", proposer="offline", parent_id="e0001",
                   motivation=f"waits for a person {evil}", code=CODE, stage=Stage.AWAITING_REVIEW),
        Experiment(id=f"e{base + 2:04d}", run=name, name="waiting-two", proposer="offline", parent_id="e0003",
                   motivation="waits too", code=CODE, stage=Stage.AWAITING_REVIEW),
        Experiment(id=f"e{base + 3:04d}", run=name, name="in-flight", proposer="offline", parent_id="e0001",
                   motivation="being trained", code=CODE, stage=Stage.APPROVED),
    ]
    with Archive.open(run_dir / "archive.sqlite") as archive:
        archive.add_experiments(experiments)
        archive.record_llm_call(LLMCall(run=name, experiment_id="e0003", role="researcher", model="openai/test",
                                        prompt=[{"role": "user", "content": f"propose {evil}"}],
                                        response=f"answer {evil}", prompt_tokens=10, completion_tokens=20,
                                        cost_usd=0.002, latency_s=1.5))
        for exp in experiments:
            archive.log_event(Event(run=name, kind="stage", message=f"proposed {exp.name}", experiment_id=exp.id))
    for exp in experiments[:6]:
        folder = run_dir / "experiments" / exp.id / "eval-seed0"
        folder.mkdir(parents=True)
        (folder.parent / "candidate.py").write_text(exp.code)
        (folder / "eval.json").write_text('{"status": "ok"}')
    return run_dir


def awaiting_ids(run_dir: Path, run: str) -> list[str]:
    with Archive.open(run_dir / "archive.sqlite", readonly=True) as archive:
        return [e.id for e in archive.experiments(run=run) if e.stage is Stage.AWAITING_REVIEW]


def decisions(run_dir: Path, exp_id: str) -> list[dict]:
    with Archive.open(run_dir / "archive.sqlite", readonly=True) as archive:
        return [e.data for e in archive.events(experiment_id=exp_id) if e.kind == "review_decision"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def served(runs_dir: Path, **options) -> Iterator[str]:
    """`create_app(runs_dir)` behind a real uvicorn on a free loopback port; yields its base URL."""
    from archlab.web.app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(runs_dir, **options), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://localhost:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
