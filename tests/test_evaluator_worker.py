"""The worker's contract with the orchestrator, and the orchestrator's handling of its inputs."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from evaluator.budgets import get_budget
from evaluator.evaluate import PROJECT_ROOT, classify, evaluate, resolve_target, wall_limit
from evaluator.records import EvalResult, Status
from evaluator.references import get_reference
from evaluator.spec import WorkerSpec, result_name
from evaluator.worker import Deadline, compiling_seconds, deadline, training_deadline
from sandbox.job import SandboxOutcome

CANDIDATES = Path(__file__).with_name("candidates")


def run_worker(work_dir: Path, spec: WorkerSpec) -> subprocess.CompletedProcess:
    spec.write(work_dir / "spec.json")
    return subprocess.run([sys.executable, "-m", "evaluator.worker", "spec.json"], cwd=work_dir, capture_output=True,
                          text=True, timeout=120,
                          env={"PYTHONPATH": str(PROJECT_ROOT), "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"})


def test_worker_deletes_the_spec_and_answers_only_under_the_nonce(tmp_path):
    shutil.copyfile(CANDIDATES / "causal_cummax.py", tmp_path / "candidate.py")
    spec = WorkerSpec(task="mqar", budget="smoke", seed=3, device="cpu", nonce="n0nce", threads=1)
    completed = run_worker(tmp_path, spec)
    assert completed.returncode == 0, completed.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["candidate.py", result_name("n0nce")]
    result = EvalResult.from_dict(json.loads((tmp_path / result_name("n0nce")).read_text()))
    assert result.status is Status.OK and result.seed == 3 and result.metrics["train_steps"] == 30
    assert [step for step, _ in result.loss_curve][:2] == [0, 5] and result.parameters > 0


def test_worker_reports_an_unloadable_candidate_as_invalid(tmp_path):
    (tmp_path / "candidate.py").write_text("import torch\n\nraise ValueError('no mixer here')\n")
    completed = run_worker(tmp_path, WorkerSpec(task="mqar", budget="smoke", seed=0, device="cpu", nonce="x"))
    result = json.loads((tmp_path / result_name("x")).read_text())
    assert completed.returncode == 0 and result["status"] == "invalid"
    assert "line 3: `raise ValueError('no mixer here')`" in result["reason"]


def test_targets_resolve_to_files_or_reference_names_and_only_references_are_exempt(tmp_path):
    softmax = get_reference("softmax_attention")
    assert resolve_target("softmax_attention").complexity_exempt
    assert resolve_target(softmax.path).complexity_exempt
    copy = tmp_path / "softmax_attention.py"
    shutil.copyfile(softmax.path, copy)
    assert not resolve_target(copy).complexity_exempt  # a copy is a candidate like any other
    with pytest.raises(FileNotFoundError, match="neither a candidate file nor a reference; references: .*delta_rule"):
        resolve_target("nonexistent_mixer")


def test_bad_arguments_fail_before_anything_is_spawned(tmp_path):
    with pytest.raises(ValueError, match="known tasks"):
        evaluate("short_convolution", "lm", out_dir=tmp_path)
    with pytest.raises(ValueError, match="takes no data path"):
        evaluate("short_convolution", "mqar", data=tmp_path, out_dir=tmp_path)
    with pytest.raises(ValueError, match="holds no files"):
        evaluate("short_convolution", "bytelm", data=tmp_path, out_dir=tmp_path)
    assert not (tmp_path / "eval.json").exists()


def test_bytelm_trains_on_a_users_corpus_mounted_read_only(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "notes.txt").write_text("the quick brown fox jumps over the lazy dog. " * 3000)
    result = evaluate("short_convolution", "bytelm", "smoke", data=corpus, out_dir=tmp_path / "out", threads=1)
    assert result.status is Status.OK, result.reason
    assert result.metrics["corpus_source"] == str(corpus.resolve()) and result.metrics["corpus_files"] == 1
    assert result.metrics["val_bpb"] < 8.0  # better than a uniform guess over bytes


def test_deadline_interrupts_a_busy_loop_and_nested_deadlines_keep_the_outer_one():
    with pytest.raises(Deadline):
        with deadline(0.2):
            while True:
                pass
    with pytest.raises(Deadline):
        with deadline(0.3):
            with deadline(60):
                pass
            while True:  # the outer deadline still rings after the inner block has closed
                pass


def test_a_stop_request_kills_the_worker_and_says_the_result_is_no_verdict(tmp_path):
    stop = threading.Event()
    stop.set()  # already set: the sandbox kills the worker as soon as it has started
    result = evaluate(CANDIDATES / "causal_cummax.py", "mqar", "smoke", out_dir=tmp_path, threads=1, stop=stop)
    assert result.status is Status.CRASHED and result.reason.startswith("stopped")


def outcome(tmp_path: Path, **how) -> SandboxOutcome:
    """A sandbox outcome as the runner reports it (a plain record)."""
    fields = dict(exit_code=0, signal=None, timed_out=False, memory_exceeded=False, wall_seconds=12.0,
                  stdout_path=tmp_path / "stdout.log", stderr_path=tmp_path / "stderr.log", stdout_tail="",
                  stderr_tail="", output_truncated=False, isolation="rlimits")
    return SandboxOutcome(**{**fields, **how})


@pytest.mark.parametrize("how, status, detail", [
    ({"timed_out": True, "exit_code": None, "signal": 9}, Status.TIMEOUT, "wall limit of 120 s (budget 90 s + 30 s grace)"),
    ({"memory_exceeded": True, "signal": 9}, Status.OOM, "limit 3.0 GiB"),
    ({"exit_code": 1, "stderr_tail": "Traceback\n  File x\nMemoryError"}, Status.OOM, "ran out of memory"),
    ({"signal": 11, "exit_code": None, "stderr_tail": "Fatal Python error: Segmentation fault"}, Status.CRASHED,
     "signal 11 without writing a result; last lines of its stderr:\nFatal Python error: Segmentation fault"),
    ({"stopped": True, "signal": 9}, Status.CRASHED, "stopped: the orchestrator stopped the worker"),
])
def test_endings_without_a_result_are_classified_from_the_sandbox(tmp_path, how, status, detail):
    smoke = get_budget("mqar", "smoke")
    result = classify(outcome(tmp_path, **how), tmp_path / result_name("abc"), smoke, wall_limit(smoke, None, "cpu"))
    assert result.status is status and detail in result.reason


def test_an_evaluation_that_compiles_gets_its_compilations_allowance_beyond_the_wall():
    """So a slow compilation, or one that falls back to eager, never costs the training its share (docs/gpu.md)."""
    smoke, bytelm_gpu = get_budget("mqar", "smoke"), get_budget("bytelm", "gpu")
    assert wall_limit(smoke, None, "cpu") == 90 + 30  # auto: eager on CPU
    assert wall_limit(smoke, True, "cpu") == 90 + 30 + 45  # compile_wall_fraction 0.5
    assert wall_limit(bytelm_gpu, None, "cuda") == 600 + 30  # auto: compiling does not pay at this budget
    assert wall_limit(bytelm_gpu, True, "cuda") == 600 + 30 + 180
    assert wall_limit(smoke, "yes", "cpu") == 90 + 30  # malformed: the worker says so
    timed_out = classify(outcome(Path("/nonexistent"), timed_out=True, exit_code=None, signal=9),
                         Path("/nonexistent") / result_name("abc"), smoke, wall_limit(smoke, True, "cpu"))
    assert "wall limit of 165 s (budget 90 s + 30 s grace + 45 s for compiling)" in timed_out.reason
    # the worker: training keeps its 0.6 of the wall after a compilation that ran into its 45 s deadline
    assert training_deadline(100.0, 45.0, smoke) == 100.0 + 45.0 + 0.6 * 90
    assert training_deadline(100.0, 0.0, smoke) == 100.0 + 0.6 * 90
    # ... and the compiler's set-up (slow on a busy machine) comes out of the compilation's allowance too
    compiled = EvalResult(Status.OK, "", "mqar", "smoke", "cpu", 0, "", timings={"compile_setup": 40.0, "compile": 5.0})
    assert compiling_seconds(compiled) == 45.0 and compiling_seconds(EvalResult(Status.OK, "", "mqar", "smoke", "cpu",
                                                                                0, "")) == 0.0


def test_an_unreadable_result_file_is_a_crash_and_other_files_are_never_read(tmp_path):
    (tmp_path / "eval.json").write_text(json.dumps({"status": "ok", "reason": "forged"}))
    result = classify(outcome(tmp_path), tmp_path / result_name("abc"), get_budget("mqar", "smoke"), 120.0)
    assert result.status is Status.CRASHED and "forged" not in result.reason
    (tmp_path / result_name("abc")).write_text("{not json")
    result = classify(outcome(tmp_path), tmp_path / result_name("abc"), get_budget("mqar", "smoke"), 120.0)
    assert result.status is Status.CRASHED and "unreadable" in result.reason
