"""Which failures are the cluster's and not the candidate's, the reason a run records when the
cluster loses an evaluation on every try, and the watch that notices a lost link to the cluster."""
from __future__ import annotations

import importlib.util
import socket
import threading
import time

import pytest

from sandbox.ray_faults import ConnectionWatch, EvaluationLost, LostAttempt, fault_cause

ray_missing = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is an optional dependency")


@ray_missing
def test_lost_nodes_workers_and_objects_are_infrastructure_faults_and_a_candidates_error_is_not():
    from ray import exceptions

    node = exceptions.NodeDiedError("Task failed because the node it was running on is dead or unavailable.\nmore")
    assert fault_cause(node) == "NodeDiedError: Task failed because the node it was running on is dead or unavailable."
    for error in (exceptions.WorkerCrashedError(), exceptions.OwnerDiedError("00" * 28, None, ""),
                  exceptions.ObjectLostError("00" * 28, None, ""), exceptions.RaySystemError("gcs gone"),
                  exceptions.LocalRayletDiedError(), exceptions.ActorDiedError(),
                  exceptions.OutOfMemoryError("Task was killed due to the node running low on memory.")):
        assert fault_cause(error) is not None, type(error)
    assert fault_cause(ValueError("the candidate's own bug")) is None
    assert fault_cause(FileNotFoundError("candidate.py")) is None


def test_a_candidate_lost_to_memory_every_time_is_recorded_as_oom_with_what_to_do():
    lost = EvaluationLost([LostAttempt(1, 2, "OutOfMemoryError: Task was killed due to the node running low on memory"),
                           LostAttempt(2, 2, "WorkerCrashedError: The worker died unexpectedly")])
    assert lost.status == "oom"
    assert "lost on all 2 tries" in lost.reason and "try 2: WorkerCrashedError" in lost.reason
    assert "memory" in lost.reason.split(";")[-1]


def test_an_evaluation_lost_with_its_node_every_time_says_to_check_the_cluster():
    lost = EvaluationLost([LostAttempt(i, 3, "NodeDiedError: the node is dead") for i in (1, 2, 3)])
    assert lost.status == "crashed"
    assert lost.reason.startswith("the evaluation was lost on all 3 tries (try 1: NodeDiedError")
    assert "archlab doctor --ray" in lost.reason


def test_the_watch_gives_the_link_up_after_the_grace_and_not_before():
    server = socket.create_server(("127.0.0.1", 0))
    address = f"127.0.0.1:{server.getsockname()[1]}"
    lost: list[str] = []
    gone = threading.Event()
    watch = ConnectionWatch(address, grace_s=1.0, on_lost=lambda m: (lost.append(m), gone.set()), probe_s=0.2)
    watch.start()
    try:
        time.sleep(1.0)
        assert not lost, "a reachable GCS is not a lost link"
        server.close()  # the head goes away
        closed = time.monotonic()
        assert gone.wait(10)
        assert 1.0 <= time.monotonic() - closed < 5
        assert address in lost[0] and "archlab resume" in lost[0]
    finally:
        watch.close()
