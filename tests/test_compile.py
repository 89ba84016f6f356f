"""Compilation where it pays: the decision, each sandbox layer's compile profile on its own, and real
compiled evaluations through `evaluate` (the real sandbox, gcc and inductor's C++ backend on CPU)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from evaluator.budgets import get_budget
from evaluator.compile import CompilePlan, check_setting, decide_compile, eager_latency, expected_train_seconds
from evaluator.evaluate import PROJECT_ROOT, evaluate

CANDIDATES = Path(__file__).with_name("candidates")


def test_auto_compiles_only_on_cuda_and_only_when_training_is_long_enough():
    assert decide_compile("auto", "cpu", 1000.0, 120.0) == (False, "auto compiles only on CUDA; on cpu inductor's "
                                                            "C++ compilation costs more than it saves")
    compiled, reason = decide_compile("auto", "cuda", 58.0, 120.0)
    assert not compiled and "expected to take 58 s, under the 120 s" in reason
    assert decide_compile("auto", "cuda", 211.0, 120.0)[0]
    assert not decide_compile("auto", "cuda", 211.0, get_budget("bytelm", "gpu").compile_pays_after_seconds)[0]
    assert not decide_compile("auto", "cuda", None, 120.0)[0]
    assert decide_compile(True, "cpu", None, 120.0) == (True, "compile is on for this evaluation")
    assert decide_compile(False, "cuda", 1e6, 120.0) == (False, "compile is off for this evaluation")
    with pytest.raises(ValueError, match='compile must be "auto", true or false'):
        check_setting("yes")
    # From the gated delta rule's eager throughput on an H200: mqar's gpu budget trains in about a minute
    # (compiling, 222 s, cannot pay), bytelm's in 3.5 minutes (in the sandbox, compiling cost more than it saved).
    assert round(expected_train_seconds(get_budget("mqar", "gpu"))) == 58
    assert round(expected_train_seconds(get_budget("bytelm", "gpu"))) == 211
    assert expected_train_seconds(get_budget("mqar", "smoke")) is None


GUARD_DRIVER = '''
import json, os, subprocess, sys
from pathlib import Path
from evaluator.candidate_loader import load_mixer_class
from evaluator.families.mixer import ALLOWED_IMPORTS
from evaluator.guard import CompileProfile, arm
cache = Path("cache").resolve()
cache.mkdir()
gcc = os.path.realpath(subprocess.run(["which", "gcc"], capture_output=True, text=True).stdout.strip())
candidate = Path("candidate.py").resolve()
arm(candidate, ALLOWED_IMPORTS, compile_profile=CompileProfile(cache, frozenset({gcc})))
outcomes = {}
def attempt(name, action):
    try:
        action()
        outcomes[name] = "allowed"
    except PermissionError as error:
        outcomes[name] = f"refused: {error}"
attempt("harness runs gcc", lambda: subprocess.run(["gcc", "--version"], capture_output=True, check=True))
attempt("harness runs true", lambda: subprocess.run(["true"], check=True))
attempt("harness runs a shell", lambda: subprocess.run("gcc --version", shell=True, check=True))
attempt("harness writes in the cache", lambda: open(cache / "kernel.py", "w").write("x = 1"))
attempt("harness writes elsewhere", lambda: open("elsewhere.py", "w").write("x = 1"))
attempt("harness opens /dev/null", lambda: open(os.devnull, "w").close())
child = subprocess.Popen(["gcc", "-x", "c", "-"], stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
attempt("harness kills its compiler", child.kill)
child.wait()
attempt("harness kills another process", lambda: os.kill(1, 0))
def in_a_forked_compile_worker():
    """What a compile worker forked after arming may do: it kept the hook."""
    import socket
    seen = {"own pid": os.getpid() != parent}
    for name, action in (("gcc", lambda: subprocess.run(["gcc", "--version"], capture_output=True, check=True)),
                         ("cache", lambda: open(cache / "from-child.py", "w").write("x = 1")),
                         ("elsewhere", lambda: open("child-elsewhere.py", "w").write("x = 1")),
                         ("socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM)),
                         ("kill", lambda: os.kill(1, 0))):
        try:
            action()
            seen[name] = "allowed"
        except PermissionError as error:
            seen[name] = f"refused: {error}"
    return seen
parent = os.getpid()
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:  # as inductor's compile pool
    outcomes["forked compile worker"] = pool.submit(in_a_forked_compile_worker).result(timeout=60)
load_mixer_class(candidate)
module = sys.modules["archlab_candidate"]
attempt("candidate runs gcc", module.run_gcc)
attempt("candidate writes in the cache", module.write_cache)
attempt("candidate opens /dev/null", module.open_devnull)
attempt("candidate forks", module.fork)
print(json.dumps(outcomes))
'''
GUARD_CANDIDATE = '''
import sys
from torch import nn

class Mixer(nn.Module):
    def forward(self, x):
        return x

def run_gcc():
    sys.modules["subprocess"].run(["gcc", "--version"], check=True)

def write_cache():
    open("cache/forged.py", "w").write("x = 1")

def open_devnull():
    open("/dev/null", "w").close()

def fork():
    if sys.modules["os"].fork() == 0:
        sys.modules["os"]._exit(0)
'''


def test_the_guards_compile_profile_runs_only_allowed_compilers_and_writes_only_the_cache_for_trusted_code(tmp_path):
    (tmp_path / "candidate.py").write_text(textwrap.dedent(GUARD_CANDIDATE))
    completed = subprocess.run([sys.executable, "-c", GUARD_DRIVER], cwd=tmp_path, capture_output=True, text=True,
                               timeout=120, env={"PYTHONPATH": str(PROJECT_ROOT), "PATH": "/usr/bin:/bin",
                                                 "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    assert completed.returncode == 0, completed.stderr[-3000:]
    outcomes = json.loads(completed.stdout.strip().splitlines()[-1])
    assert outcomes["harness runs gcc"] == "allowed"
    assert outcomes["harness writes in the cache"] == "allowed"
    assert outcomes["harness opens /dev/null"] == "allowed"  # Triton's launcher build sends its output there
    assert outcomes["harness kills its compiler"] == "allowed"  # the compile deadline stops it
    assert "a candidate may not signal other processes" in outcomes["harness kills another process"]
    assert "subprocess.Popen('true') is refused: the compile profile runs only the compilers" in \
        outcomes["harness runs true"]
    assert "subprocess.Popen(" in outcomes["harness runs a shell"] and "runs only the compilers" in \
        outcomes["harness runs a shell"]
    assert "nothing may write files" in outcomes["harness writes elsewhere"]
    child = outcomes["forked compile worker"]  # inductor's compile workers are forked: they keep the hook
    assert child["own pid"] and child["gcc"] == "allowed" and child["cache"] == "allowed"
    assert "nothing may write files" in child["elsewhere"]
    assert "may not open network connections" in child["socket"]
    assert "may not signal other processes" in child["kill"]
    for refused in ("candidate runs gcc", "candidate writes in the cache", "candidate opens /dev/null",
                    "candidate forks"):  # the candidate's frame is on the stack
        assert "only with trusted code on the stack; untrusted: " in outcomes[refused]
        assert outcomes[refused].endswith("candidate.py)")
    assert "a candidate may not start processes" in outcomes["candidate runs gcc"]
    assert "os.fork is refused: a candidate may not start processes" in outcomes["candidate forks"]
    assert "nothing may write files" in outcomes["candidate writes in the cache"]
    assert not (tmp_path / "elsewhere.py").exists() and not (tmp_path / "cache" / "forged.py").exists()
    assert (tmp_path / "cache" / "from-child.py").exists() and not (tmp_path / "child-elsewhere.py").exists()


def test_the_latency_measurement_runs_compiled_functions_eager_only_in_a_compiled_evaluation():
    """Its lengths (to 16384) would each compile a graph for a length-specialised mixer (docs/gpu.md)."""
    graphs = []

    def recording_backend(graph: torch.fx.GraphModule, example_inputs: list) -> object:
        graphs.append(graph)
        return graph.forward
    compiled = torch.compile(lambda x: x.sin() + 1, backend=recording_backend, fullgraph=True)
    with eager_latency(CompilePlan(True, True, "compile is on for this evaluation")):
        assert torch.equal(compiled(torch.ones(3)), torch.ones(3).sin() + 1)
    assert graphs == []
    with eager_latency(CompilePlan(True, False, "compilation failed, so the evaluation ran eager")):
        compiled(torch.ones(3))
    assert len(graphs) == 1


@pytest.mark.slow
def test_a_compiled_evaluation_matches_eager_and_records_its_compilation(tmp_path):
    """Through the real sandbox: compiled (checks included) vs auto, which stays eager on CPU."""
    candidate = tmp_path / "cummax.py"
    shutil.copyfile(CANDIDATES / "causal_cummax.py", candidate)
    compiled = evaluate(candidate, "mqar", "smoke", compile=True, out_dir=tmp_path / "compiled")
    eager = evaluate(candidate, "mqar", "smoke", out_dir=tmp_path / "eager")
    assert compiled.ok and eager.ok, (compiled.reason, eager.reason, compiled.log_tail[-2000:])
    assert compiled.compilation == {"setting": True, "compiled": True, "reason": "compile is on for this evaluation",
                                    "expected_train_seconds": None}
    assert eager.compilation["compiled"] is False and "auto compiles only on CUDA" in eager.compilation["reason"]
    assert compiled.timings["compile"] > 0 and "compile" not in eager.timings
    assert compiled.timings["compile_setup"] > 0 and "compile_setup" not in eager.timings  # its own allowance
    assert abs(compiled.metrics["accuracy"] - eager.metrics["accuracy"]) <= 0.05
    assert compiled.guards["seccomp"].startswith(("active: compile profile", "inactive"))
    assert "compile profile" in compiled.guards["audit_hook"] and "compile profile" not in eager.guards["audit_hook"]
    recorded = json.loads((tmp_path / "compiled" / "eval.json").read_text())
    assert recorded["compilation"]["compiled"] is True and "compile" not in recorded["metrics"]


@pytest.mark.slow
def test_a_candidate_that_cannot_compile_is_evaluated_eager_with_the_reason(tmp_path):
    result = evaluate(CANDIDATES / "compile_breaks.py", "mqar", "smoke", compile=True, out_dir=tmp_path)
    assert result.ok, (result.reason, result.log_tail[-2000:])
    assert result.compilation["compiled"] is False
    assert result.compilation["reason"].startswith("compilation failed, so the evaluation ran eager: ")
    assert "data-dependent expression" in result.compilation["reason"]  # the `if ... .item() > 1e6` branch
    assert result.timings["compile"] > 0 and result.metrics["train_steps"] == 30
