"""A discovery run on a real multi-node Ray on this host (a head and worker nodes, each its own
raylet and object store): a node killed in the middle of an evaluation costs no experiment, a
candidate whose node dies on every try ends with a clear reason, and a lost head ends the work in
flight and stops the run (cleanly, the evaluations left to `archlab resume`) instead of the process."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

from knowledge.archive import Archive
from knowledge.records import Stage
from sandbox.executors import RayExecutor, WorkCancelled
from sandbox.job import Limits, SandboxJob
from sandbox.runner import run_sandboxed
from tests.cluster_support import LocalCluster, start_archlab
from tests.loop_support import archlab, status, write_config

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is an optional dependency")]
RUN_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def cluster():
    cluster = LocalCluster(workers=2)
    try:
        yield cluster
    finally:
        cluster.shutdown()


def _wait(run: subprocess.Popen, until, what: str, timeout: float = RUN_TIMEOUT_S):
    """Poll `until()` while the run goes on; its value once truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = until()
        if found:
            return found
        if run.poll() is not None:
            raise AssertionError(f"the run ended before {what}:\n{run.stdout.read()}")
        time.sleep(0.2)
    run.kill()
    raise AssertionError(f"no {what} in {timeout} s:\n{run.stdout.read()}")


def _finish(run: subprocess.Popen) -> str:
    try:
        output, _ = run.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        run.kill()
        raise AssertionError(f"the run did not finish in {RUN_TIMEOUT_S} s:\n{run.communicate()[0]}") from None
    assert run.returncode == 0, output
    return output


def test_a_worker_node_killed_mid_evaluation_costs_no_experiment(tmp_path, cluster):
    config = write_config(tmp_path, experiments=2, workers=2)
    started = time.monotonic()
    run = start_archlab("run", "--config", str(config), "--name", "node-kill", "--ray", cluster.address, cwd=tmp_path)
    victim = _wait(run, lambda: cluster.node_evaluating(min_seconds=1.0), "evaluation on a worker node")
    cluster.kill(victim)
    killed_at = time.monotonic() - started
    output = _finish(run)
    print(f"\n--- archlab run ({time.monotonic() - started:.1f} s; worker node killed at {killed_at:.1f} s) ---\n"
          f"{output}")

    run_dir = tmp_path / "runs" / "node-kill"
    assert status(run_dir, tmp_path)["finished"] == 2  # the planned proposals
    with Archive.open(run_dir / "archive.sqlite", readonly=True) as archive:
        assert archive.integrity_check() == ["ok"]
        experiments = archive.experiments(run="node-kill")
        events = archive.events(run="node-kill")
    for event in events:
        if event.kind in ("lost", "placement", "failure"):
            print(f"{event.experiment_id} {event.kind}: {event.message}")
    lost = [e for e in events if e.kind == "lost"]
    assert lost and all("NodeDiedError" in e.data["cause"] or "WorkerCrashedError" in e.data["cause"] for e in lost)
    assert all(e.data["attempt"] == 1 and "trying again" in e.message for e in lost)
    for exp in experiments:  # a candidate may fail on its own; never because the node went away
        assert exp.finished, exp
        assert not exp.reason.startswith(("internal error", "the evaluation was lost")), (exp.id, exp.reason)
    assert {e.status for e in experiments if e.proposer == "reference"} == {"ok"}
    # Each evaluation (an experiment's seed) completed once: the lost try left no result behind.
    completed = Counter((e.experiment_id, e.data["out_dir"]) for e in events if e.kind == "placement")
    assert completed and max(completed.values()) == 1, completed
    for exp in experiments:
        seeds = exp.metrics.get("seeds", [])
        assert sum(1 for (exp_id, _out) in completed if exp_id == exp.id) == len(seeds), exp.id
    lost_dirs = {(e.experiment_id, e.data["out_dir"]) for e in lost}
    assert lost_dirs <= set(completed), "a lost evaluation was not completed by a later try"
    placed = next(e for e in events if e.kind == "placement")
    assert placed.data["node_id"] and "stay there" in placed.message  # where its files are, named


def test_a_candidate_whose_node_dies_on_every_try_ends_with_the_reason(tmp_path, cluster):
    """The baseline is the candidate here (the first evaluation of a run): its failure stops the run
    and the reason reaches the person at the terminal."""
    config = write_config(tmp_path, experiments=1, workers=1, extra="ray_tries = 2")
    run = start_archlab("run", "--config", str(config), "--name", "node-dies", "--ray", cluster.address, cwd=tmp_path)
    kills = 0
    while kills < 2:  # the evaluation, wherever its retry lands, loses its node
        victim = _wait(run, lambda: cluster.node_evaluating(min_seconds=0.5), f"try {kills + 1} of the evaluation")
        cluster.kill(victim)
        cluster.add_worker()  # a replacement, as an autoscaler would start one
        kills += 1
    output, _ = run.communicate(timeout=RUN_TIMEOUT_S)
    print(f"\n--- archlab run, the node under its baseline killed {kills} times ---\n{output}")
    assert run.returncode == 1 and "run stopped: the baseline gated_delta_rule failed here: crashed: " \
        "the evaluation was lost on all 2 tries (try 1: NodeDiedError" in output, output

    with Archive.open(tmp_path / "runs" / "node-dies" / "archive.sqlite", readonly=True) as archive:
        assert archive.integrity_check() == ["ok"]
        [baseline] = archive.experiments(run="node-dies")
        lost = archive.events(experiment_id=baseline.id, kind="lost")
    assert [e.data["attempt"] for e in lost] == [1, 2] and "no tries left" in lost[-1].message
    assert baseline.stage is Stage.FAILED and baseline.status == "crashed"
    assert baseline.reason.startswith("the evaluation was lost on all 2 tries (try 1: NodeDiedError"), baseline.reason
    assert "archlab doctor --ray" in baseline.reason


def test_doctor_reports_the_clusters_nodes_and_that_archlab_imports_there(tmp_path, cluster):
    cluster.cluster.wait_for_nodes()  # the nodes killed by the tests above are known to be gone
    report = json.loads(archlab("doctor", "--ray", cluster.address, "--json", cwd=tmp_path).stdout)["cluster"]
    print(json.dumps(report, indent=1))
    assert report["address"] == cluster.address and "error" not in report
    assert len(report["nodes"]) == len(cluster.workers) + 1 and report["cpus"] == len(cluster.workers)
    assert sum(node["head"] for node in report["nodes"]) == 1
    for node in report["nodes"]:
        assert node["problem"] == "" and node["archlab"] and node["torch"], node


def test_a_lost_head_ends_the_work_in_flight_and_stops_the_run_before_ray_would_end_the_process(tmp_path, cluster):
    """Last in this module: the cluster is of no use after it. The executor in this process is the
    driver's: its evaluation is abandoned (not recorded), the stop set, and the reason kept."""
    stop, notes = threading.Event(), []
    executor = RayExecutor("cpu", address=cluster.address, reconnect_s=5, stop=stop,
                           notify=lambda kind, message, data: notes.append((kind, message)))
    try:
        job = executor.submit(_sleeping_job(tmp_path), stop=stop)
        deadline = time.monotonic() + 120
        while cluster.node_evaluating(min_seconds=0.2) is None:
            assert not job.done() and time.monotonic() < deadline, job.exception()
            time.sleep(0.2)
        cluster.kill_head()
        lost_at = time.monotonic()
        with pytest.raises(WorkCancelled, match="lost the connection to the Ray cluster"):
            job.result(timeout=60)
        assert 5 <= time.monotonic() - lost_at < 20 and stop.is_set()
        assert "unreachable for 5 s" in executor.lost_connection and "archlab resume" in executor.lost_connection
        assert notes == [("connection", executor.lost_connection)]
    finally:
        ended = time.monotonic()
        executor.shutdown()
    assert time.monotonic() - ended < 30  # and this process goes on: Ray did not end it


def _sleeping_job(root):
    def run(device, stop):  # sandboxed, as an evaluation is: it shows as an evaluator worker on its node
        job = SandboxJob(argv=[sys.executable, "-c", "import time; time.sleep(600)", "evaluator.worker"],
                         work_dir=root, limits=Limits(wall_seconds=600), device=device)
        return run_sandboxed(job)
    return run
