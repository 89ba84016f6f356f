"""Executors place jobs on device slots: at most one job per slot at a time, the slot passed to the factory."""
from __future__ import annotations

import importlib.util
import sys
import threading
import time
from pathlib import Path

import pytest

from sandbox.executors import LocalPool, RayExecutor, WorkCancelled
from sandbox.isolation import Isolation
from sandbox.job import Limits, SandboxJob, SandboxOutcome
from sandbox.runner import run_sandboxed

SLEEP_JOB = "import time, sys; time.sleep(0.3); print(sys.argv[1])"
NO_BWRAP = Isolation(prefer_bwrap=False)


def _work(root: Path, index: int, seconds: float = 0.3):
    """A piece of work that runs one sandboxed job on the device it is given."""
    def run(device: str, stop: threading.Event | None) -> SandboxOutcome:
        work_dir = root / f"job{index}"
        work_dir.mkdir()
        job = SandboxJob(argv=[sys.executable, "-c", SLEEP_JOB.replace("0.3", str(seconds)), device],
                         work_dir=work_dir, limits=Limits(wall_seconds=60), device=device)
        return run_sandboxed(job, isolation=NO_BWRAP, stop=stop)
    return run


def test_local_pool_runs_one_job_per_slot_at_a_time(tmp_path):
    pool = LocalPool(["cpu", "cpu"])
    try:
        outcomes = [f.result(timeout=60) for f in [pool.submit(_work(tmp_path, i)) for i in range(5)]]
    finally:
        pool.shutdown()
    assert all(o.exit_code == 0 and o.stdout_tail == "cpu\n" for o in outcomes)
    spans = sorted((o.started_at, o.started_at + o.wall_seconds) for o in outcomes)
    most_at_once = max(sum(start <= moment < end for start, end in spans) for moment, _ in spans)
    assert most_at_once <= 2, "more jobs ran at once than there are slots"
    assert pool.capacity == 2


def test_local_pool_gives_each_job_its_own_slot_device():
    pool = LocalPool(["cuda:0", "cuda:1"])
    seen: list[str] = []
    held = threading.Barrier(2, timeout=30)

    def record(device: str, stop: threading.Event | None) -> str:
        held.wait()  # both slots are held at this moment
        seen.append(device)
        return device

    try:
        assert sorted(f.result(timeout=60) for f in [pool.submit(record) for _ in range(2)]) == ["cuda:0", "cuda:1"]
    finally:
        pool.shutdown()


def test_a_stop_reaches_local_work_and_kills_its_sandbox(tmp_path):
    pool, stop = LocalPool(["cpu"]), threading.Event()
    try:
        future = pool.submit(_work(tmp_path, 0, seconds=600), stop=stop)
        while not (tmp_path / "job0" / "stdout.log").exists():  # the sandbox has started
            assert not future.done(), future.exception()
            time.sleep(0.05)
        started = time.monotonic()
        stop.set()
        with pytest.raises(WorkCancelled):  # no result to record: the sandbox was killed, not the candidate's doing
            future.result(timeout=60)
        assert time.monotonic() - started < 10
        assert not _processes_running(SLEEP_JOB.replace("0.3", "600"))
        ran: list[str] = []
        with pytest.raises(WorkCancelled):  # work submitted after the stop does not start at all
            pool.submit(lambda device, stop: ran.append(device), stop=stop).result(timeout=60)
        assert ran == []
    finally:
        pool.shutdown()


def test_local_pool_refuses_bad_slots():
    with pytest.raises(ValueError, match="at least one slot"):
        LocalPool([])
    with pytest.raises(ValueError, match="'cpu' or 'cuda:N'"):
        LocalPool(["gpu"])


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is an optional dependency")
def test_ray_executor_runs_sandboxed_work_and_a_stop_cancels_it(tmp_path):
    executor, stop = RayExecutor("cpu", capacity=2, num_cpus=2), threading.Event()
    try:
        outcome = executor.submit(_work(tmp_path, 0)).result(timeout=120)
        assert outcome.exit_code == 0 and outcome.stdout_tail == "cpu\n"
        assert outcome.stdout_path == tmp_path / "job0" / "stdout.log"

        endless = executor.submit(_work(tmp_path, 1, seconds=600), stop=stop)
        while not (tmp_path / "job1" / "stdout.log").exists():  # the sandbox has started on a Ray worker
            assert not endless.done(), endless.exception()
            time.sleep(0.1)
        stop.set()
        with pytest.raises(WorkCancelled):  # however Ray reports the killed task; at the stop, not after 600 s
            endless.result(timeout=60)
        deadline = time.monotonic() + 10  # the sandbox dies with its Ray worker (parent-death signal)
        while _processes_running(SLEEP_JOB.replace("0.3", "600")):
            assert time.monotonic() < deadline, "the cancelled task's sandbox survived"
            time.sleep(0.1)
    finally:
        executor.shutdown()


def _processes_running(command_fragment: str) -> bool:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if command_fragment.encode() in cmdline.read_bytes():
                return True
        except OSError:
            continue
    return False


def _start_order(pool: LocalPool, staggered: bool) -> list[str]:
    """Two pieces of work submitted one after the other, then a third once both ended: the order in which they
    started and the first began training (its `train` progress event, sent only where the pool asks for progress).
    The first trains once the second has started or, `staggered`, after a second (the second must wait for it)."""
    from evaluator.progress import ProgressEvent

    order: list[str] = []
    second_started, may_train = threading.Event(), threading.Event()

    def first(device: str, stop: threading.Event | None, sharing: int = 1, on_progress=None) -> None:
        order.append("first starts")
        second_started.wait(timeout=1 if staggered else 60)
        may_train.wait(timeout=60)
        order.append("first trains")
        if on_progress is not None:
            on_progress(ProgressEvent("phase", "train"))

    def second(device: str, stop: threading.Event | None, sharing: int = 1, on_progress=None) -> None:
        order.append("second starts")
        second_started.set()

    try:
        running = pool.submit(first)
        while not order:  # the first holds slot 0 before the second is submitted
            time.sleep(0.01)
        waiting = pool.submit(second)
        may_train.set()
        running.result(timeout=60), waiting.result(timeout=60)
        pool.submit(lambda device, stop, sharing=1, on_progress=None: order.append("third starts")).result(timeout=5)
    finally:
        pool.shutdown()
    return order


def test_staggered_pool_starts_a_shared_gpus_first_work_when_the_one_before_trains():
    """cuda:0x2 with stagger: the second slot's first work waits until the first has begun training; later work
    on a free slot starts at once. Without stagger both start together."""
    assert _start_order(LocalPool(["cuda:0x2"], stagger=True), staggered=True) == [
        "first starts", "first trains", "second starts", "third starts"]
    unstaggered = _start_order(LocalPool(["cuda:0x2"]), staggered=False)
    assert unstaggered.index("second starts") < unstaggered.index("first trains"), unstaggered


def test_a_runs_pool_staggers_shared_gpus_when_configured():
    from agents.config import RunConfig
    from agents.session import make_executor

    staggered = _start_order(make_executor(RunConfig(devices=["cuda:0x2"], stagger_starts=True)), staggered=True)
    assert staggered.index("second starts") > staggered.index("first trains"), staggered
    together = _start_order(make_executor(RunConfig(devices=["cuda:0x2"])), staggered=False)  # off by default
    assert together.index("second starts") < together.index("first trains"), together


def test_staggered_pool_releases_the_next_start_when_work_ends_without_training():
    """Work that fails before training (no `train` event) still lets the next slot's first work start."""
    pool = LocalPool(["cuda:0x3"], stagger=True)
    try:
        failing = pool.submit(lambda device, stop, sharing=1, on_progress=None: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            failing.result(timeout=10)
        assert [pool.submit(lambda device, stop, sharing=1, on_progress=None: device).result(timeout=10)
                for _ in range(3)] == ["cuda:0"] * 3
    finally:
        pool.shutdown()


def test_a_stop_reaches_work_waiting_for_its_staggered_start():
    """Work waiting for its turn on a shared GPU ends with WorkCancelled at the stop, without ever starting."""
    pool, stop, release = LocalPool(["cuda:0x2"], stagger=True), threading.Event(), threading.Event()
    started: list[str] = []
    try:
        first = pool.submit(lambda device, stop, sharing=1, on_progress=None: release.wait(timeout=60))
        waiting = pool.submit(lambda device, stop, sharing=1, on_progress=None: started.append("second"), stop=stop)
        stop.set()
        with pytest.raises(WorkCancelled):
            waiting.result(timeout=10)  # the first has neither trained nor ended
        assert started == [] and not first.done()
        release.set()
        assert first.result(timeout=10) is True
    finally:
        pool.shutdown()
