"""Executors place jobs on device slots: at most one job per slot at a time, the slot passed to the factory."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from sandbox.executors import LocalPool, RayExecutor
from sandbox.isolation import Isolation
from sandbox.job import Limits, SandboxJob

SLEEP_JOB = "import time, sys; time.sleep(0.3); print(sys.argv[1])"


def _factory(root: Path, index: int):
    def build(device: str) -> SandboxJob:
        work_dir = root / f"job{index}"
        work_dir.mkdir()
        return SandboxJob(argv=[sys.executable, "-c", SLEEP_JOB, device], work_dir=work_dir,
                          limits=Limits(wall_seconds=20), device=device)
    return build


def test_local_pool_runs_one_job_per_slot_at_a_time(tmp_path):
    pool = LocalPool(["cpu", "cpu"], isolation=Isolation(prefer_bwrap=False))
    try:
        outcomes = [f.result(timeout=60) for f in [pool.submit(_factory(tmp_path, i)) for i in range(5)]]
    finally:
        pool.shutdown()
    assert all(o.exit_code == 0 and o.stdout_tail == "cpu\n" for o in outcomes)
    spans = sorted((o.started_at, o.started_at + o.wall_seconds) for o in outcomes)
    most_at_once = max(sum(start <= moment < end for start, end in spans) for moment, _ in spans)
    assert most_at_once <= 2, "more jobs ran at once than there are slots"


def test_local_pool_gives_each_job_its_own_slot_device(tmp_path):
    pool = LocalPool(["cuda:0", "cuda:1"], isolation=Isolation(prefer_bwrap=False, use_cgroups=False))
    seen: list[str] = []

    def record(device: str) -> SandboxJob:
        seen.append(device)
        return SandboxJob(argv=["/bin/true"], work_dir=tmp_path, device=device)

    try:
        for future in [pool.submit(record) for _ in range(4)]:
            assert future.result(timeout=60).exit_code == 0
    finally:
        pool.shutdown()
    assert set(seen) <= {"cuda:0", "cuda:1"} and len(seen) == 4


def test_local_pool_reports_a_factory_that_ignores_its_slot(tmp_path):
    pool = LocalPool(["cpu"], isolation=Isolation(prefer_bwrap=False, use_cgroups=False))
    try:
        future = pool.submit(lambda device: SandboxJob(argv=["/bin/true"], work_dir=tmp_path, device="cuda:3"))
        with pytest.raises(ValueError, match="was given slot 'cpu'"):
            future.result(timeout=60)
        assert pool.submit(lambda device: SandboxJob(argv=["/bin/true"], work_dir=tmp_path)).result(60).exit_code == 0
    finally:
        pool.shutdown()


def test_local_pool_refuses_bad_slots():
    with pytest.raises(ValueError, match="at least one slot"):
        LocalPool([])
    with pytest.raises(ValueError, match="'cpu' or 'cuda:N'"):
        LocalPool(["gpu"])


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is an optional dependency")
def test_ray_executor_runs_a_sandboxed_job(tmp_path):
    executor = RayExecutor("cpu", num_cpus=2)
    try:
        outcome = executor.submit(_factory(tmp_path, 0)).result(timeout=120)
    finally:
        executor.shutdown()
    assert outcome.exit_code == 0 and outcome.stdout_tail == "cpu\n"
    assert outcome.stdout_path == tmp_path / "job0" / "stdout.log"
