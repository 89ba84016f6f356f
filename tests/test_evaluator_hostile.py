"""Hostile and unusual candidates, each classified end to end through `evaluate()` in the sandbox.

Every test asserts the status and that the reason carries what a person or an LLM needs to act
on (the line, the position, the limit). Candidate files live in tests/candidates/.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluator.budgets import get_budget

import evaluator.evaluate as evaluate_module
from evaluator.evaluate import evaluate
from evaluator.records import EvalResult, Status
from sandbox.screen import ScreenReport

CANDIDATES = Path(__file__).with_name("candidates")


def run(name: str, tmp_path: Path, **options) -> EvalResult:
    result = evaluate(CANDIDATES / name, "mqar", "smoke", out_dir=tmp_path / "out", threads=1, **options)
    written = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert written["status"] == result.status.value and written["reason"] == result.reason
    return result


def test_non_causal_mixer_is_leaky_with_the_leaking_position(tmp_path):
    result = run("noncausal_mean.py", tmp_path)
    assert result.status is Status.LEAKY
    assert "output at position 0 changed" in result.reason


def test_batch_mixing_mixer_is_leaky(tmp_path):
    result = run("batch_mean.py", tmp_path)
    assert result.status is Status.LEAKY and "only sample 1 was perturbed" in result.reason


def test_leak_behind_a_zero_gate_is_leaky(tmp_path):
    result = run("zero_gated_leak.py", tmp_path)
    assert result.status is Status.LEAKY and "randomised parameters" in result.reason


def test_leak_in_eval_mode_only_is_leaky(tmp_path):
    result = run("eval_mode_leak.py", tmp_path)
    assert result.status is Status.LEAKY and "eval mode" in result.reason


@pytest.mark.slow
def test_endless_forward_times_out_naming_the_check(tmp_path):
    result = run("endless_loop.py", tmp_path)
    assert result.status is Status.TIMEOUT
    limit = get_budget("mqar", "smoke").check_seconds
    assert "check 'instantiate' was running" in result.reason and f"{limit:g} s" in result.reason


def test_memory_hog_is_oom(tmp_path):
    result = run("memory_hog.py", tmp_path)
    assert result.status is Status.OOM
    assert "ran out of memory" in result.reason and "line 14" in result.reason


@pytest.mark.parametrize("name, refused", [
    ("fork_bomb.py", "line 2: import of `os` is not allowed"),
    ("network_call.py", "line 2: import of `socket` is not allowed"),
    ("write_outside.py", "line 10: `open` is not allowed"),
    ("env_secret.py", "line 2: import of `os` is not allowed"),
    ("fake_metrics.py", "line 10: `torch.save` is not allowed"),
    ("forge_result_files.py", "`open` is not allowed"),
])
def test_escape_attempts_are_invalid_by_the_screen_before_anything_runs(tmp_path, name, refused):
    result = run(name, tmp_path)
    assert result.status is Status.INVALID and refused in result.reason
    assert [c.name for c in result.checks] == ["screen"] and result.isolation == ""  # nothing was spawned


def test_forged_result_files_are_refused_even_when_the_screen_is_bypassed(tmp_path, monkeypatch):
    """The second line of defence: the runtime guard refuses every write once candidate code loads."""
    monkeypatch.setattr(evaluate_module, "screen_source", lambda source, allowed: ScreenReport(passed=True))
    result = run("forge_result_files.py", tmp_path)
    assert result.status is Status.INVALID and "forged" not in result.metrics
    assert "archlab runtime guard: open('eval.json', 'w') is refused" in result.reason and "line 20" in result.reason


def test_secret_environment_never_reaches_the_worker(tmp_path, monkeypatch):
    """`torch.os.environ` is refused by the screen (the sandbox's environment allowlist is the second line,
    tested with raw scripts in test_sandbox_containment)."""
    monkeypatch.setenv("ARCHLAB_TEST_SECRET", "hunter2")
    result = run("env_secret_via_torch.py", tmp_path)
    assert "hunter2" not in result.reason + result.log_tail
    assert result.status is Status.INVALID and "`.os` is not allowed" in result.reason


def test_patching_torch_in_process_invalidates_the_run(tmp_path):
    result = run("patches_harness.py", tmp_path)
    assert result.status is Status.INVALID
    assert "torch.Tensor.argmax" in result.reason  # caught at run time by the worker's integrity check


def test_exploding_mixer_is_diverged_with_the_step(tmp_path):
    result = run("exploding.py", tmp_path)
    assert result.status is Status.DIVERGED
    assert "at step" in result.reason and result.loss_curve


def test_output_flood_is_truncated_and_does_not_change_the_verdict(tmp_path):
    result = run("print_flood.py", tmp_path)
    assert result.status is Status.OK
    assert len(result.log_tail) < 10_000 and "flood" in result.log_tail
    # It printed 12 kB on each of several hundred forwards; the kept log is capped far below that.
    assert (tmp_path / "out" / "stdout.log").stat().st_size < 2**20


def test_syntax_error_is_invalid_with_the_line(tmp_path):
    result = run("syntax_error.py", tmp_path)
    assert result.status is Status.INVALID and "line 11" in result.reason and "syntax error" in result.reason


def test_constructor_without_n_heads_is_invalid_with_the_expected_call(tmp_path):
    result = run("missing_n_heads.py", tmp_path)
    assert result.status is Status.INVALID
    assert "Mixer(d_model=32, n_heads=2)" in result.reason and "TypeError" in result.reason


def test_wrong_output_shape_is_invalid_with_both_shapes(tmp_path):
    result = run("wrong_shape.py", tmp_path)
    assert result.status is Status.INVALID and "returned shape [2, 32, 64] for input shape [2, 32, 32]" in result.reason


def test_crash_in_forward_is_invalid_with_the_line(tmp_path):
    result = run("raises_in_forward.py", tmp_path)
    assert result.status is Status.INVALID and "line 13" in result.reason


def test_oversized_mixer_is_over_budget_with_the_counts(tmp_path):
    result = run("oversized.py", tmp_path)
    assert result.status is Status.OVER_BUDGET and "the budget allows 200,000" in result.reason


def test_quadratic_mixer_is_too_slow_with_the_exponent_and_the_limit(tmp_path):
    result = run("quadratic_attention.py", tmp_path)
    assert result.status is Status.TOO_SLOW and "grows as T^1.9" in result.reason and "limit T^1.5" in result.reason


@pytest.mark.parametrize("name", ["causal_cummax.py", "gated_ema.py"])
def test_unusual_but_valid_mixers_are_ok(tmp_path, name):
    result = run(name, tmp_path)
    assert result.status is Status.OK, result.reason
    assert [c.name for c in result.checks] == ["screen", "instantiate", "forward", "causality", "batch_independence",
                                               "complexity", "trained_causality"]
    assert all(c.passed for c in result.checks)
    assert 0.0 <= result.metrics["accuracy"] <= 1.0 and result.train_tokens_per_second > 0
    assert set(result.inference_latency_ms) == {"64", "256"} and result.peak_memory_bytes > 0


def test_exiting_from_forward_is_invalid_with_the_line(tmp_path):
    result = run("exits_in_forward.py", tmp_path)
    assert result.status is Status.INVALID and "SystemExit at line 12" in result.reason


# Classes 1 and 2 at run time: the screen is bypassed so that the worker's own layers are tested alone.

def bypass_screen(monkeypatch) -> None:
    monkeypatch.setattr(evaluate_module, "screen_source", lambda source, allowed: ScreenReport(passed=True))


def test_a_tensor_subclass_from_forward_is_invalid(tmp_path, monkeypatch):
    bypass_screen(monkeypatch)  # the screen refuses `__torch_function__` too
    result = run("forge_tensor_subclass.py", tmp_path)
    assert result.status is Status.INVALID
    assert "returned a archlab_candidate.Agreeable (a torch.Tensor subclass); return a plain tensor" in result.reason


@pytest.mark.parametrize("name, refused", [
    ("runtime_function_mode.py", "TorchFunctionMode(s) active"),
    ("runtime_global_hook.py", "torch.nn.modules.module._global_forward_hooks"),
])
def test_modes_and_global_hooks_left_active_are_invalid(tmp_path, monkeypatch, name, refused):
    bypass_screen(monkeypatch)
    result = run(name, tmp_path)
    assert result.status is Status.INVALID and refused in result.reason
    assert "intercept(s) the harness's own torch calls" in result.reason and not result.metrics


@pytest.mark.parametrize("name, refused", [
    ("forge_result_exec.py", "line 7: `exec(compile(FORGE, \"forge\", \"exec\"))`: archlab runtime guard: compile is refused"),
    ("runtime_reads_environ.py", "line 7: `stolen = open(\"/proc/self/environ\", \"rb\").read()"),
    ("runtime_socket.py", "line 14: `socket.create_connection((\"127.0.0.1\", 9), timeout=1)`: archlab runtime guard: "
                          "socket.getaddrinfo is refused"),
    ("runtime_subprocess.py", "line 14: `os.system(\"echo escaped > /tmp/archlab-escaped\")`: archlab runtime guard: "
                              "os.system is refused"),
    ("runtime_hunts_nonce.py", "archlab runtime guard: gc.get_objects is refused"),
    ("runtime_walks_frames.py", "line 12: `frame = sys._getframe()`: archlab runtime guard: sys._getframe is refused"),
])
def test_escapes_past_the_screen_are_refused_by_the_runtime_guard_with_the_line(tmp_path, monkeypatch, name, refused):
    bypass_screen(monkeypatch)
    result = run(name, tmp_path)
    assert result.status is Status.INVALID and refused in result.reason, result.reason
    assert result.guards["audit_hook"].startswith("audit hook armed")


def test_a_result_written_into_the_open_descriptor_fails_the_seal(tmp_path, monkeypatch):
    """os.write raises no audit event: a forged result written into the worker's descriptor must not count."""
    bypass_screen(monkeypatch)
    result = run("forge_result_fd.py", tmp_path)
    assert result.status is Status.CRASHED and "forged" not in result.metrics and not result.metrics
    assert "seal" in result.reason or "without writing a result" in result.reason


@pytest.mark.parametrize("name, replaced", [
    ("runtime_patches_cross_entropy.py", "torch.nn.functional.cross_entropy"),
    ("runtime_patches_argmax.py", "torch.Tensor.argmax"),
])
def test_patches_no_audit_event_sees_are_caught_right_after_the_forward(tmp_path, monkeypatch, name, replaced):
    """Setting a class's or a module's attribute raises no audit event in Python 3.11: the worker checks
    the functions the loss and metrics call after every check and every forward of the backbone."""
    bypass_screen(monkeypatch)
    result = run(name, tmp_path)
    assert result.status is Status.INVALID and replaced in result.reason and not result.metrics


def test_a_kernel_replaced_in_the_dispatcher_is_caught_by_the_integrity_check(tmp_path, monkeypatch):
    bypass_screen(monkeypatch)
    result = run("forge_dispatch_kernel.py", tmp_path)
    assert result.status is Status.INVALID
    assert "the kernel of aten::argmax" in result.reason and "no metric of this run can be trusted" in result.reason


def test_valid_mixer_using_dataclass_namedtuple_lru_cache_and_fft_passes_every_guard(tmp_path):
    result = run("runtime_valid_unusual.py", tmp_path)
    assert result.status is Status.OK, result.reason
    assert all(c.passed for c in result.checks) and result.metrics["train_steps"] == 30
    assert result.guards["audit_hook"].startswith("audit hook armed") and "seccomp" in result.guards
