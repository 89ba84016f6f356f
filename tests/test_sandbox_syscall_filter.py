"""The worker's seccomp filter, applied in real Python processes that then try what it must refuse."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sandbox.syscall_filter import syscall_filter_support

REPO = Path(__file__).resolve().parents[1]
SUPPORT = syscall_filter_support()
needs_filter = pytest.mark.skipif(not SUPPORT.active, reason=f"seccomp filter unavailable here: {SUPPORT.detail}")


PREAMBLE = """
import json, os, signal, socket, subprocess, sys, threading
sys.path.insert(0, sys.argv[1])
import torch
"""
APPLY = """
from sandbox.syscall_filter import apply_syscall_filter
status = apply_syscall_filter(FILTER_ARGUMENTS)
results = {"active": status.active, "detail": status.detail}

def attempt(name, action):
    try:
        action()
        results[name] = "allowed"
    except PermissionError:
        results[name] = "refused"
    except OSError as error:
        results[name] = f"failed: {error!r}"

def libc_call(name, *arguments):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if getattr(libc, name)(*arguments) != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
"""


def run_filtered(body: str, *args: str, prelude: str = "", filter_arguments: str = "") -> dict:
    """Run `body` after the filter is applied (as the worker does, torch already imported, with `filter_arguments`
    such as "allow_processes=True"); its `results` dict."""
    apply = APPLY.replace("FILTER_ARGUMENTS", filter_arguments)
    script = "\n".join([PREAMBLE, prelude, apply, textwrap.dedent(body), "print(json.dumps(results))"])
    process = subprocess.run([sys.executable, "-I", "-c", script, str(REPO), *args],
                             capture_output=True, text=True, timeout=60)
    assert process.returncode == 0, process.stderr
    return json.loads(process.stdout.strip().splitlines()[-1])


@needs_filter
def test_escapes_are_refused_with_permission_error_and_normal_work_goes_on():
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        results = run_filtered("""
            attempt("inet socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close())
            attempt("inet6 socket", lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close())
            attempt("unix socket", lambda: socket.socket(socket.AF_UNIX).close())
            attempt("socketpair", lambda: [s.close() for s in socket.socketpair()])
            attempt("fork", os.fork)
            attempt("subprocess", lambda: subprocess.run(["/bin/true"]))
            attempt("exec", lambda: os.execv(sys.executable, [sys.executable, "-c", "pass"]))
            attempt("kill parent", lambda: os.kill(os.getppid(), 0))
            attempt("kill sleeper", lambda: os.kill(int(sys.argv[2]), signal.SIGKILL))
            attempt("kill own, signal 0", lambda: os.kill(os.getpid(), 0))
            attempt("own signal handler", lambda: signal.raise_signal(signal.SIGUSR1))
            attempt("unshare", lambda: libc_call("unshare", 0x40000000))  # CLONE_NEWNET, through ctypes
            seen = []
            thread = threading.Thread(target=lambda: seen.append(threading.get_native_id()))
            thread.start(); thread.join()
            results["thread"] = "allowed" if seen else "failed"
            torch.set_num_threads(2)  # torch's pool of worker threads starts now, under the filter
            product = torch.ones(512, 512) @ torch.ones(512, 512)
            results["matmul"] = "allowed" if float(product[0, 0]) == 512.0 and torch.get_num_threads() == 2 else "failed"
        """, str(sleeper.pid), prelude="signal.signal(signal.SIGUSR1, lambda *_: None)")
        assert sleeper.poll() is None, "the filtered process killed another process"
    finally:
        sleeper.kill()
        sleeper.wait()
    assert results.pop("active") is True, results["detail"]
    assert "refused (EPERM)" in results.pop("detail")
    refused = {"inet socket", "inet6 socket", "fork", "subprocess", "exec", "kill parent", "kill sleeper", "unshare"}
    assert {name for name, outcome in results.items() if outcome == "refused"} == refused, results
    assert all(results[name] == "allowed" for name in results.keys() - refused), results


EARLY_THREAD = """
import queue
jobs, answers = queue.Queue(), queue.Queue()
def serve():  # started before the filter, like torch's and CUDA's threads in the worker
    jobs.get()
    try:
        socket.socket(socket.AF_INET).close()
        answers.put("allowed")
    except PermissionError:
        answers.put("refused")
threading.Thread(target=serve, daemon=True).start()
"""


@needs_filter
def test_filter_covers_threads_started_before_it():
    results = run_filtered("""
        jobs.put("go")
        results["early thread socket"] = answers.get(timeout=10)
    """, prelude=EARLY_THREAD)
    assert results["early thread socket"] == "refused", results


def test_without_pyseccomp_the_filter_is_reported_inactive_and_nothing_breaks():
    results = run_filtered("""
        attempt("inet socket", lambda: socket.socket(socket.AF_INET).close())
    """, prelude="sys.modules['pyseccomp'] = None  # as on a GPU machine with only torch, numpy and the stdlib")
    assert results["active"] is False and "install `pyseccomp`" in results["detail"], results
    assert results["inet socket"] == "allowed"


def test_support_probe_leaves_this_process_unfiltered():
    assert isinstance(SUPPORT.active, bool) and SUPPORT.detail
    subprocess.run([sys.executable, "-c", "pass"], check=True)  # exec and fork still work here


@needs_filter
def test_the_compile_profile_allows_processes_and_still_refuses_sockets_to_them_and_their_children():
    results = run_filtered("""
        attempt("exec", lambda: subprocess.run(["gcc", "--version"], capture_output=True, check=True))
        attempt("socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).close())
        child = subprocess.run([sys.executable, "-c", "import socket; socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)"],
                               capture_output=True, text=True)
        results["child socket"] = "refused" if "PermissionError" in child.stderr else "allowed"
    """, filter_arguments="allow_processes=True")
    assert results["active"] and results["detail"].startswith("compile profile")
    assert results == {**results, "exec": "allowed", "socket": "refused", "child socket": "refused"}


@needs_filter
def test_the_status_says_whether_the_kernel_forced_speculation_mitigations_on_the_worker():
    results = run_filtered("""
        results["ssb"] = next(line for line in open("/proc/self/status") if line.startswith("Speculation_Store_Bypass"))
    """)
    assert results["active"] and results["detail"].endswith(f"speculative store bypass: {results['ssb'].split(':')[1].strip()}")
