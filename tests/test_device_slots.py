"""Device slot specs (`--devices`): parsing, the `auto` rule, the CPU threads split between slots, and the
executor handing each piece of work its slot's sharing. Fast: no evaluation runs."""
from __future__ import annotations

import os
import threading

import pytest
from pydantic import ValidationError

from agents.config import RunConfig
from evaluator.budgets import get_budget
from archlab.config import load_config
from archlab.devices import gpu_figures
from archlab.errors import UsageError
from sandbox.executors import LocalPool
from sandbox.slots import DeviceSlot, Sharing, auto_sharing, auto_slots, memory_fraction, parse_slots, threads_per_slot
from tests.cli_support import cli

GIB = 2**30


def test_specs_become_slots_with_their_sharing():
    assert parse_slots(["cpu", "cpu"]) == [DeviceSlot("cpu", 1)] * 2
    assert parse_slots(["cuda", "cuda:1"]) == [DeviceSlot("cuda:0", 1), DeviceSlot("cuda:1", 1)]
    assert parse_slots(["cuda:0x3", "cpu"]) == [DeviceSlot("cuda:0", 3)] * 3 + [DeviceSlot("cpu", 1)]
    assert parse_slots(["cuda:2", "cuda:2"]) == [DeviceSlot("cuda:2", 2)] * 2  # one GPU named twice is shared


@pytest.mark.parametrize("spec, fragment", [
    ("gpu", "write 'cpu' or 'cuda:N', or 'cuda:NxK'"),
    ("cuda:0x0", "at least 1"),
    ("cuda:0x9", "at most 8 evaluations at once on one GPU"),
    ("cuda:-1", "e.g. cuda:0x4"),
    ("auto", "'auto' stands alone"),
])
def test_bad_specs_say_what_to_write(spec, fragment):
    with pytest.raises(ValueError, match=fragment):
        parse_slots([spec])


def test_auto_takes_the_tightest_of_memory_utilisation_cores_and_eight():
    memory = 100 * GIB  # 0.9 of it holds 9 evaluations of 10 GiB
    assert auto_sharing(memory, 10 * GIB, 0.1, 64).per_gpu == 8  # the cap
    assert auto_sharing(memory, 10 * GIB, 0.01, 64).per_gpu == 8
    assert auto_sharing(memory, 20 * GIB, 0.01, 64).per_gpu == 4  # memory: floor(90 / 20)
    assert auto_sharing(memory, 1 * GIB, 0.3, 64).per_gpu == 3  # busy 30%: round(1 / 0.3)
    assert auto_sharing(memory, 1 * GIB, 0.3, 5).per_gpu == 2  # 5 cores: 2 evaluations of 2 cores
    sharing = auto_sharing(memory, 1 * GIB, 0.9, 64)
    assert sharing.per_gpu == 1 and "limited by GPU busy fraction" in sharing.reason
    assert auto_sharing(memory, 200 * GIB, 0.1, 64).per_gpu == 1  # at least one, even when it does not fit


def test_auto_is_one_per_gpu_and_says_so_when_the_budget_is_not_measured():
    for peak, busy in ((None, 0.2), (4 * GIB, None), (None, None)):
        sharing = auto_sharing(100 * GIB, peak, busy, 64)
        assert sharing.per_gpu == 1 and "not measured" in sharing.reason
    assert auto_slots(2, Sharing(1, "")) == ["cuda:0", "cuda:1"]
    assert auto_slots(2, Sharing(3, "")) == ["cuda:0x3", "cuda:1x3"]


def test_auto_takes_the_compiled_figures_when_the_run_compiles():
    bytelm, mqar = get_budget("bytelm", "gpu"), get_budget("mqar", "gpu")
    h200 = 139 * GIB
    for setting in (None, "auto", False):  # the presets' auto stays eager
        figures = gpu_figures(bytelm, setting)
        assert figures.busy_fraction == bytelm.gpu_busy_fraction and "eager" in figures.which
    compiled = gpu_figures(bytelm, True)
    assert (compiled.busy_fraction, compiled.peak_memory_bytes) == (bytelm.gpu_busy_fraction_compiled,
                                                                    bytelm.gpu_peak_memory_bytes_compiled)
    eager = gpu_figures(bytelm, None)
    # measured on an H200: eager one at a time keeps the GPU busy 76% of the time, compiled 35% (its set-up is longer)
    assert auto_sharing(h200, eager.peak_memory_bytes, eager.busy_fraction, 16).per_gpu == 1
    assert auto_sharing(h200, compiled.peak_memory_bytes, compiled.busy_fraction, 16).per_gpu == 3
    unmeasured = gpu_figures(mqar, True)  # mqar's compiled figures are not measured: its eager ones, said so
    assert unmeasured.busy_fraction == mqar.gpu_busy_fraction and "not measured" in unmeasured.which


def test_cpu_threads_and_gpu_memory_are_split_between_slots():
    assert threads_per_slot(16, 4) == 4 and threads_per_slot(2, 4) == 1 and threads_per_slot(16, 1) == 16
    assert memory_fraction(0.9, 1) == 0.9 and memory_fraction(0.9, 4) == pytest.approx(0.225)
    cores = os.cpu_count() or 1
    assert RunConfig(devices=["cuda:0x4", "cuda:1x4"]).threads_per_worker == max(1, cores // 8)
    assert RunConfig(workers=3).threads_per_worker == max(1, cores // 3)
    assert RunConfig(devices=["cuda:0x4"], ray="auto").threads_per_worker == 1  # a Ray task holds one CPU


def test_the_config_checks_devices_and_ray_takes_a_share_of_a_gpu(tmp_path):
    assert RunConfig(devices=[" cuda:0x2 "]).devices == ["cuda:0x2"]
    assert RunConfig(devices=["auto"]).devices == ["auto"]  # resolved by `archlab run` on this machine
    with pytest.raises(ValidationError, match="'auto' stands alone"):
        RunConfig(devices=["auto", "cpu"])
    path = tmp_path / "archlab.toml"
    path.write_text('devices = ["cuda:0x2", "tpu"]\n')
    with pytest.raises(UsageError, match="device slot 'tpu'"):
        load_config(path, {})
    assert RunConfig(devices=["cuda:0x4"], ray="auto").ray_gpu_sharing == 4  # num_gpus = 1/4 per evaluation
    assert RunConfig(devices=["cuda"], ray="auto").ray_gpu_sharing == 1
    assert RunConfig(ray="auto").ray_gpu_sharing == 1


def test_local_pool_hands_each_piece_of_work_its_slots_sharing():
    pool = LocalPool(["cuda:0x2", "cpu"])
    held = threading.Barrier(3, timeout=30)

    def record(device: str, stop: threading.Event | None, sharing: int = 1) -> tuple[str, int]:
        held.wait()  # all three slots are held at this moment
        return device, sharing
    try:
        assert pool.capacity == 3 and pool.slots == ["cuda:0", "cuda:0", "cpu"]
        seen = sorted(f.result(timeout=60) for f in [pool.submit(record) for _ in range(3)])
    finally:
        pool.shutdown()
    assert seen == [("cpu", 1), ("cuda:0", 2), ("cuda:0", 2)]


def test_run_refuses_bad_devices_with_exit_2(tmp_path):
    for args, fragment in ((["--devices", "cuda:0x0"], "at least 1"),
                           (["--devices", "auto", "--ray", "local"], "on Ray give cuda"),
                           (["--devices", "cuda:1,gpu"], "device slot 'gpu'")):
        done = cli("run", *args, "--experiments", "0", "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
        assert done.returncode == 2 and fragment in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "runs").exists()


def test_run_refuses_staggered_starts_on_ray_with_exit_2(tmp_path):
    (tmp_path / "archlab.toml").write_text("stagger_starts = true\n")
    done = cli("run", "--ray", "local", "--experiments", "0", "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert done.returncode == 2 and "set stagger_starts = false" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "runs").exists()


def test_run_auto_without_a_gpu_is_a_usage_error(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: auto packs it")
    done = cli("run", "--devices", "auto", "--experiments", "0", "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert done.returncode == 2 and "--devices auto packs this machine's GPUs, and it has none" in done.stderr
