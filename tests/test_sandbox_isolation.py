"""Isolation policy, launch plan, environment, rlimits, cgroup lifecycle and job validation."""
from __future__ import annotations

import dataclasses
import json
import os
import resource
import sys
from pathlib import Path

import pytest

from sandbox.bubblewrap import bwrap_argv
from sandbox.capture import OutputCapture
from sandbox.isolation import Isolation, isolation_report
from sandbox.job import Limits, SandboxJob
from sandbox.process_setup import job_environment, resource_limits
from sandbox.runner import run_sandboxed


@pytest.fixture
def job(tmp_path) -> SandboxJob:
    work_dir = tmp_path / "work"
    work_dir.mkdir()
    return SandboxJob(argv=[sys.executable, "-c", "print('ok')"], work_dir=work_dir,
                      limits=Limits(wall_seconds=10, memory_bytes=2**30))


def test_report_of_the_forced_fallback_lists_what_it_does_not_cover():
    report = isolation_report(Isolation(prefer_bwrap=False, use_cgroups=False))
    assert report.level == "weak"
    assert report.missing == ["bubblewrap", "cgroup-pids", "cgroup-memory"]
    assert "rlimits" in report.layers and "env-allowlist" in report.layers
    notes = " ".join(report.notes)
    seccomp = next(layer for layer in report.every_layer if layer.name == "seccomp syscall filter")
    network = "the worker's seccomp filter refuses network sockets" if seccomp.active else "no network isolation"
    for gap in (network, "no filesystem isolation", "no fork-bomb guard", "turned off by the policy"):
        assert gap in notes


def test_report_lists_every_layer_with_its_state_and_reason():
    report = isolation_report(Isolation(prefer_bwrap=False, use_cgroups=False))
    layers = {layer.name: layer for layer in report.every_layer}
    assert list(layers)[:3] == ["static screen", "runtime guard (audit hook)", "seccomp syscall filter"]
    assert {"bubblewrap", "cgroup v1 pids", "cgroup v1 memory", "cgroup v2 pids", "cgroup v2 memory",
            "rlimits"} <= set(layers)
    assert layers["static screen"].active and layers["rlimits"].active
    assert not layers["bubblewrap"].active and "turned off by the policy" in layers["bubblewrap"].detail
    assert not layers["cgroup v2 memory"].active and "turned off by the policy" in layers["cgroup v2 memory"].detail
    assert all(layer.detail for layer in report.every_layer)


def test_doctor_shows_every_layer_within_80_columns():
    from archlab.commands.doctor import gather, render

    report = gather()
    lines = render(report)
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    text = "\n".join(lines)
    for layer in report["isolation"]["every_layer"]:
        assert layer["name"] in text and ("on  " if layer["active"] else "OFF ") + layer["name"] in text
    assert json.loads(json.dumps(report))["isolation"]["every_layer"][0]["name"] == "static screen"


def test_report_says_why_a_broken_bwrap_is_not_used():
    isolation = Isolation(bwrap_program="/nonexistent/bwrap", use_cgroups=False)
    assert isolation.bwrap.program is None and isolation.name == "rlimits"
    assert any("not installed" in note for note in isolation.report().notes)


def test_report_of_this_machine_matches_the_label_on_outcomes():
    isolation = Isolation()
    report = isolation.report()
    assert ("bubblewrap" in report.layers) == ("bubblewrap" in isolation.name)
    assert report.level == {3: "strong", 2: "partial", 1: "weak"}[len(isolation.name.split("+"))]


def test_environment_is_built_from_the_allowlist(job, tmp_path):
    parent = {"OPENAI_API_KEY": "sk", "AWS_SECRET_ACCESS_KEY": "x", "HOME": "/root", "PATH": "/secret/bin",
              "LD_LIBRARY_PATH": "/opt/cuda/lib64"}
    job = SandboxJob(argv=job.argv, work_dir=job.work_dir, env={"PYTHONPATH": "/code"}, device="cuda:1")
    environment = job_environment(job, parent, cpus=3)
    assert "OPENAI_API_KEY" not in environment and "AWS_SECRET_ACCESS_KEY" not in environment
    assert environment["HOME"] == str(job.work_dir) and environment["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    assert environment["CUDA_VISIBLE_DEVICES"] == "1" and environment["OMP_NUM_THREADS"] == "3"
    assert environment["PYTHONPATH"] == "/code" and environment["PYTHONHASHSEED"] == "0"
    assert environment["LD_LIBRARY_PATH"] == "/opt/cuda/lib64" and environment["HF_HUB_OFFLINE"] == "1"
    cpu_job = SandboxJob(argv=job.argv, work_dir=job.work_dir)
    assert job_environment(cpu_job, parent, cpus=1)["CUDA_VISIBLE_DEVICES"] == ""


def test_malformed_job_env_is_refused(job):
    bad = SandboxJob(argv=job.argv, work_dir=job.work_dir, env={"A=B": "1"})
    with pytest.raises(ValueError, match="job env"):
        job_environment(bad, {}, cpus=1)


def test_rlimits_skip_address_space_on_cuda_and_default_cpu_time_from_wall():
    limits = Limits(wall_seconds=100, memory_bytes=2**30, max_file_bytes=2**20)
    on_cpu = dict(resource_limits(limits, "cpu", cpus=2, processes_of_user=0))
    on_cuda = dict(resource_limits(limits, "cuda:0", cpus=2, processes_of_user=0))
    assert on_cpu[resource.RLIMIT_AS] == (2**30, 2**30) and resource.RLIMIT_AS not in on_cuda
    assert on_cpu[resource.RLIMIT_CPU][0] == 100 * 2 + 30
    assert on_cpu[resource.RLIMIT_FSIZE] == (2**20, 2**20) and on_cpu[resource.RLIMIT_CORE] == (0, 0)
    assert on_cpu[resource.RLIMIT_NOFILE] == (256, 256) and on_cpu[resource.RLIMIT_NPROC][0] == 512


def test_bwrap_command_writes_only_to_the_work_dir(job):
    home = Path.home()
    argv = bwrap_argv("bwrap", SandboxJob(argv=job.argv, work_dir=job.work_dir, readonly_paths=(Path("/work/main"),)))
    writable = [argv[i + 2] for i, arg in enumerate(argv) if arg in ("--bind", "--dev-bind")]
    assert writable == [str(job.work_dir.resolve())]
    mounted = [argv[i + 2] for i, arg in enumerate(argv) if arg.startswith("--") and "bind" in arg]
    assert str(home) not in mounted and "/work" not in mounted and "/" not in mounted
    assert {"--unshare-all", "--die-with-parent", "--new-session"} <= set(argv)
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    assert argv[argv.index("--") + 1:] == job.argv


def test_bwrap_command_binds_gpu_devices_only_for_cuda_jobs(job):
    cpu = bwrap_argv("bwrap", job)
    cuda = bwrap_argv("bwrap", SandboxJob(argv=job.argv, work_dir=job.work_dir, device="cuda:0"))
    assert "/sys" not in cpu and "/sys" in cuda
    assert not any(arg.startswith("/dev/nvidia") for arg in cpu)


def test_job_cgroups_are_removed_after_the_job(job):
    """The job names its own cgroups (/proc/self/cgroup): other tests' jobs may come and go meanwhile."""
    isolation = Isolation(prefer_bwrap=False)
    if not isolation.cgroups.available:
        pytest.skip("no writable cgroups here")
    parents = [p for p in (isolation.cgroups.pids, isolation.cgroups.memory) if p is not None]
    job = dataclasses.replace(job, argv=[sys.executable, "-c", "print(open('/proc/self/cgroup').read())"])
    outcome = run_sandboxed(job, isolation=isolation)
    assert outcome.exit_code == 0
    own = {line.rsplit("/", 1)[-1] for line in outcome.stdout_tail.splitlines() if "/archlab-" in line}
    assert len(own) == 1, outcome.stdout_tail  # one job, one name, in every controller it was placed in
    placed = [parent / name for parent in parents for name in own]
    assert placed and not any(path.exists() for path in placed)


@pytest.mark.parametrize("change, message", [
    ({"argv": []}, "non-empty list"),
    ({"argv": ["no-such-program-xyz"]}, "not an executable"),
    ({"work_dir": Path("relative/dir")}, "absolute Path"),
    ({"device": "gpu0"}, "'cpu' or 'cuda:N'"),
    ({"readonly_paths": (Path("/no/such/path"),)}, "readonly_paths"),
    ({"limits": Limits(wall_seconds=0)}, "wall_seconds must be positive"),
])
def test_malformed_jobs_are_refused_before_anything_runs(job, change, message):
    fields = {"argv": job.argv, "work_dir": job.work_dir, "limits": job.limits, **change}
    with pytest.raises(ValueError, match=message):
        run_sandboxed(SandboxJob(**fields), isolation=Isolation(prefer_bwrap=False, use_cgroups=False))


def test_capture_keeps_head_and_tail_of_a_long_stream(tmp_path):
    capture = OutputCapture([tmp_path / "out.log"], keep_bytes=10)
    os.write(capture.writers[0], b"0123456789abcdefghijKLMNOPQRSTUVWXYZ")
    capture.close_writers()
    (stream,) = capture.finish(grace_seconds=5)
    assert stream.total_bytes == 36 and stream.truncated
    assert stream.tail.endswith("QRSTUVWXYZ") and "26 earlier bytes not shown" in stream.tail
    assert (tmp_path / "out.log").read_bytes() == b"0123456789\n[archlab sandbox: 16 bytes left out]\nQRSTUVWXYZ"
