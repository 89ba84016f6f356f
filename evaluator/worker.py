"""The sandboxed evaluation of one candidate: `python -m evaluator.worker SPEC_JSON_PATH`.

Runs inside the sandbox with the work directory as cwd: reads the spec and deletes it (the
nonce must be gone before candidate code runs), loads the candidate, runs checks 2-6, trains,
computes the held-out metrics, re-checks the trained model, measures cost, and writes a
partial EvalResult to `result-<nonce>.json`. Every failure becomes a status with a reason;
the worker itself stops at its wall budget, leaving the sandbox's kill as the backstop.
When the spec names a progress descriptor, phases, checks and logged training steps are sent
there as they happen (`evaluator.progress`); they are only shown, never part of the result.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import signal
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import torch

from evaluator.backbone import EAGER_PARTS, build_model, count_parameters
from evaluator.budgets import Budget, get_budget
from evaluator.candidate_loader import (CandidateError, ContractError, blame_candidate, describe_failure,
                                       is_out_of_memory, load_mixer_class)
from evaluator.checks import (check_batch_independence, check_causality, check_complexity, check_forward,
                              check_instantiate, check_trained_causality, precision_for, scoring_inputs)
from evaluator.compile import (Compiled, CompilePlan, check_setting, compile_allowance, compile_or_fall_back, eager,
                               eager_latency, prepare_compilation)
from evaluator.harness import held_out_metrics, seed_everything, train
from evaluator.families.mixer import ALLOWED_IMPORTS
from evaluator.guard import CompileProfile, arm
from evaluator.integrity import replaced_since, take_snapshot, torch_interference
from evaluator.measure import forward_latency_ms, peak_memory_bytes, reset_peak_memory
from evaluator.proxies import zero_cost_proxies
from evaluator.progress import ProgressCallback, ProgressEvent, make_writer
from evaluator.records import CheckResult, EvalResult, Status
from evaluator.spec import WorkerSpec, result_name, seal
from evaluator.tasks import Task, get_task


class Deadline(BaseException):
    """Raised by the alarm; a BaseException so that candidate `except Exception` cannot swallow it."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise Deadline in the main thread once `seconds` have passed inside the block.

    Nests: an inner deadline never outlives an enclosing one, and the enclosing one resumes after.
    """
    def ring(signum: int, frame: object) -> None:
        raise Deadline()
    entered = time.monotonic()
    outer_remaining, _ = signal.getitimer(signal.ITIMER_REAL)
    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, max(min(seconds, outer_remaining or seconds), 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_remaining:
            signal.setitimer(signal.ITIMER_REAL, max(outer_remaining - (time.monotonic() - entered), 0.01))


def configure_device(spec: WorkerSpec) -> torch.device:
    torch.set_num_threads(max(1, spec.threads))
    torch.set_num_interop_threads(1)
    device = torch.device(spec.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("the spec asks for CUDA but this worker sees no GPU")
        device = torch.device("cuda", device.index or 0)  # memory caps and statistics want an index
        torch.cuda.set_device(device)
        if spec.gpu_memory_fraction:
            torch.cuda.set_per_process_memory_fraction(spec.gpu_memory_fraction, device)
    return device


def run_checks(result: EvalResult, checks: list[tuple[str, Callable[[], CheckResult]]], seconds: float,
               progress: ProgressCallback = lambda event: None) -> bool:
    """Run checks in order until one fails; False (and the result's status set) on failure."""
    started = time.perf_counter()
    for index, (name, check) in enumerate(checks, start=1):
        try:
            with deadline(seconds - (time.perf_counter() - started)):
                outcome = check()
            refuse_interference()  # before the next check runs under a mode the candidate left
        except Deadline:
            result.status = Status.TIMEOUT
            result.reason = (f"the checks did not finish within {seconds:g} s (check '{name}' was running): "
                             "look for an endless loop or a very slow forward")
            return False
        result.checks.append(outcome)
        progress(ProgressEvent("check", name, outcome.passed, index, len(checks)))
        if not outcome.passed:
            result.status, result.reason = Status(outcome.details["status"]), outcome.reason
            return False
    return True


def evaluate_candidate(spec: WorkerSpec, result: EvalResult, candidate: Path, started: float,
                       progress: ProgressCallback = lambda event: None,
                       compilation: tuple[CompilePlan, CompileProfile | None] | None = None) -> None:
    """Fill `result` in place, phase by phase; returns early at the first failure.
    `compilation`: the plan and the compiler from `prepare_compilation` (None: eager)."""
    device = configure_device(spec)
    task: Task = get_task(spec.task)
    budget: Budget = get_budget(spec.task, spec.budget)
    vocab_size = task.vocab_size(budget)
    data = task.make_data(budget, spec.seed, Path(spec.data_path) if spec.data_path else None)  # files: before arming
    plan, profile = compilation or (CompilePlan(False, False, "compile is off for this evaluation"), None)
    result.guards = arm_guards(candidate, [Path(spec.data_path)] if spec.data_path else [], profile)
    mark = time.perf_counter()

    mixer_class = load_mixer_class(candidate)  # the first moment candidate code runs
    refuse_interference()

    def make_eager_mixer() -> torch.nn.Module:
        return mixer_class(budget.d_model, budget.n_heads)
    make_mixer, parts = make_eager_mixer, EAGER_PARTS  # compiled: all but the complexity check and proxies (docs/gpu.md)
    if plan.compiled:
        progress(ProgressEvent("phase", "compile"))
        compiled = compile_within(mixer_class, make_eager_mixer, plan, budget, vocab_size, device, spec.seed)
        make_mixer, parts, plan = compiled.make_mixer, compiled.parts, compiled.plan
        result.timings["compile"] = compiled.seconds
        mark += compiled.seconds  # compile is its own phase: the checks' lap leaves it out
        refuse_interference()
    result.compilation = plan.record()
    seed_everything(spec.seed)
    checks = [
        ("instantiate", lambda: check_instantiate(make_mixer, candidate, budget, vocab_size, device)),
        ("forward", lambda: check_forward(make_mixer, candidate, budget)),
        ("causality", lambda: check_causality(make_mixer, candidate, budget, spec.seed, precision_for(device))),
        ("batch_independence", lambda: check_batch_independence(make_mixer, candidate, budget, spec.seed,
                                                                precision_for(device))),
        ("complexity", lambda: check_complexity(make_eager_mixer, candidate, budget, device,
                                                task.max_complexity_exponent, spec.complexity_exempt)),
    ]
    progress(ProgressEvent("phase", "checks"))
    passed = run_checks(result, checks, budget.check_seconds, progress)
    mark = _lap(result, "checks", mark)
    if not passed:
        return

    refuse_interference()
    seed_everything(spec.seed)  # the training-free rung: a throw-away model, then training starts afresh
    proxies_started = time.perf_counter()
    result.metrics["proxies"] = zero_cost_proxies(build_model(make_eager_mixer, vocab_size, budget).to(device),
                                                  data.train_batch, device, candidate)
    result.timings["proxies"] = time.perf_counter() - proxies_started  # a timing, not a metric: replays compare metrics
    score = result.metrics["proxies"].get(spec.gate_proxy) if spec.gate_below is not None else None
    if score is not None and score < spec.gate_below:  # the run's proxy gate (agents/proxy_gate.py): not trained
        result.status = Status.SKIPPED
        result.reason = f"skipped by the {spec.gate_proxy} proxy: {score:.4g} below the gate's threshold {spec.gate_below:.4g}"
        return
    refuse_interference()
    seed_everything(spec.seed)
    model = build_model(make_mixer, vocab_size, budget, parts).to(device)
    result.parameters = count_parameters(model)
    reset_peak_memory(device)
    mark = _lap(result, "data_and_model", mark)

    def log_step(steps_done: int, loss: float, tokens_per_second: float | None) -> None:
        progress(ProgressEvent("step", "", True, steps_done, budget.steps, loss if math.isfinite(loss) else None,
                               tokens_per_second))
    progress(ProgressEvent("phase", "train"))
    trained = train(model, data.train_batch, budget, device,
                    training_deadline(started, compiling_seconds(result), budget), vocab_size, candidate,
                    log_step, step_graphs=plan.compiled)  # CUDA only: evaluator/step_graphs.py
    if plan.compiled and device.type == "cuda":
        result.compilation["step_graphs"] = trained.step_graphs
    result.loss_curve, result.train_tokens_per_second = trained.loss_curve, trained.tokens_per_second
    result.metrics.update(train_steps=trained.steps_done, train_steps_planned=budget.steps,
                          stopped_early=trained.stopped_early)
    result.timings["first_step_epoch"] = trained.first_step_at
    mark = _lap(result, "train", mark)
    if trained.diverged:
        result.status, result.reason = Status.DIVERGED, trained.diverged
        return
    if trained.stopped_early:
        result.reason = (f"training stopped early by the wall budget after {trained.steps_done} of {budget.steps} "
                         "steps; metrics are of the partly trained model")

    refuse_interference()
    progress(ProgressEvent("phase", "eval"))
    metrics = held_out_metrics(model, task, data, device, candidate)
    result.metrics.update(metrics)
    mark = _lap(result, "eval", mark)
    bad = [k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        result.status, result.reason = Status.DIVERGED, f"held-out metric(s) {', '.join(bad)} are not finite"
        return

    def rebuild() -> torch.nn.Module:  # a fresh model built as the trained one was: what training changed
        seed_everything(spec.seed)
        return build_model(make_mixer, vocab_size, budget, parts).to(device)
    trained_check = check_trained_causality(model, scoring_inputs(data.eval_batches()), vocab_size, candidate,
                                            spec.seed, precision_for(device), rebuild, budget)
    result.checks.append(trained_check)
    progress(ProgressEvent("check", trained_check.name, trained_check.passed, 1, 1))
    if not trained_check.passed:
        result.status, result.reason = Status(trained_check.details["status"]), trained_check.reason
        return

    result.peak_memory_bytes = peak_memory_bytes(device)
    progress(ProgressEvent("phase", "measure"))
    with blame_candidate(candidate, "the latency measurement"), eager_latency(plan):
        result.inference_latency_ms = forward_latency_ms(model, vocab_size, budget.latency_lengths,
                                                         budget.latency_repeats, device)
    _lap(result, "measure", mark)


def compiling_seconds(result: EvalResult) -> float:
    """The compiler's set-up and the first compiled steps: both come out of the compilation's allowance."""
    return result.timings.get("compile_setup", 0.0) + result.timings.get("compile", 0.0)


def training_deadline(started: float, compile_seconds: float, budget: Budget) -> float:
    """When training stops early: its share of the wall, counted after the compilation, which has an allowance of
    its own (compile_allowance): a slow compilation, or one that fell back to eager, costs the training nothing."""
    return started + compile_seconds + budget.train_wall_fraction * budget.wall_seconds


def compile_within(mixer_class: type[torch.nn.Module], make_eager: Callable[[], torch.nn.Module], plan: CompilePlan,
                   budget: Budget, vocab_size: int, device: torch.device, seed: int) -> Compiled:
    """`compile_or_fall_back`, cut at `budget.compile_wall_fraction` of the wall budget (the compilation's
    allowance): a compilation that runs past it leaves the evaluation eager, with the reason."""
    seconds = budget.compile_wall_fraction * budget.wall_seconds
    started = time.perf_counter()
    try:
        with deadline(seconds):
            return compile_or_fall_back(mixer_class, make_eager, plan, budget, vocab_size, device, seed)
    except Deadline:
        reason = (f"compilation took longer than {seconds:g} s ({budget.compile_wall_fraction:g} of the wall budget), "
                  "so the evaluation ran eager")
        return eager(make_eager, dataclasses.replace(plan, compiled=False, reason=reason), time.perf_counter() - started)


def arm_guards(candidate: Path, readable: list[Path], compile_profile: CompileProfile | None = None) -> dict[str, str]:
    """Arm the audit hook, then the seccomp filter (when the sandbox package offers one); what is in force.
    With `compile_profile` both allow what torch.compile needs (docs/sandbox.md, "The compile profile")."""
    try:
        from sandbox.syscall_filter import apply_syscall_filter
    except ImportError:
        apply_syscall_filter = None
    compiling = compile_profile is not None
    hook, syscalls = arm(candidate, ALLOWED_IMPORTS, readable, compile_profile=compile_profile,
                         then=(lambda: apply_syscall_filter(allow_processes=compiling)) if apply_syscall_filter
                         else (lambda: None))
    if syscalls is None:
        seccomp = "not available (no sandbox.syscall_filter)"
    else:
        seccomp = f"{'active' if syscalls.active else 'inactive'}: {syscalls.detail}"
    return {"audit_hook": hook.detail, "seccomp": seccomp}


def refuse_interference() -> None:
    """A torch mode or global module hook left active by candidate code would intercept the harness's calls."""
    problem = torch_interference()
    if problem:
        raise ContractError(problem)


PHASES = ("checks", "data_and_model", "train", "eval", "measure")


def _lap(result: EvalResult, phase: str, since: float) -> float:
    now = time.perf_counter()
    result.timings[phase] = now - since
    print(f"[worker] {phase} done in {now - since:.2f} s", flush=True)
    return now


def _current_phase(result: EvalResult) -> str:
    return next((p for p in PHASES if p not in result.timings), PHASES[-1])


def run(spec: WorkerSpec, candidate: Path, started: float,
        progress: ProgressCallback = lambda event: None) -> EvalResult:
    """Evaluate and classify every way it can end."""
    budget = get_budget(spec.task, spec.budget)
    result = EvalResult(status=Status.OK, reason="", task=spec.task, budget=spec.budget, device=spec.device,
                        seed=spec.seed, candidate_hash=hashlib.sha256(candidate.read_bytes()).hexdigest())
    try:
        setting = check_setting(budget.compile if spec.compile is None else spec.compile)
    except ValueError as error:
        result.status, result.reason = Status.CRASHED, f"the spec is malformed: {error}"
        return result
    # Before the snapshot: the compiler stack's imports register kernels; before arming: nothing is refused yet.
    setting_up = time.perf_counter()
    compilation = prepare_compilation(setting, budget, torch.device(spec.device), Path.cwd(), spec.threads)
    if compilation[1] is not None:  # the compiler's set-up (imports, Triton's driver): part of compiling, not training
        result.timings["compile_setup"] = time.perf_counter() - setting_up
    budget_seconds = budget.wall_seconds + compile_allowance(setting, budget, torch.device(spec.device).type)
    untouched = take_snapshot()  # before any candidate code runs
    try:
        with deadline(budget_seconds - (time.perf_counter() - started)):
            evaluate_candidate(spec, result, candidate, started, progress, compilation)
    except Deadline:
        result.status = Status.TIMEOUT
        result.reason = (f"the evaluation did not finish within the wall budget of {budget_seconds:g} s "
                         f"(phase '{_current_phase(result)}' was running)")
    except ContractError as error:
        result.status, result.reason = Status.INVALID, error.reason
    except CandidateError as error:
        # Before any check passed the candidate is malformed; later, it broke while training or evaluating.
        result.status = Status.INVALID if not result.checks else Status.CRASHED
        result.reason = error.reason
    except Exception as error:  # noqa: BLE001 - every ending becomes a status
        traceback.print_exc()
        if is_out_of_memory(error):
            result.status = Status.OOM
            result.reason = f"ran out of memory in phase '{_current_phase(result)}': " + describe_failure(
                error, candidate, "the candidate")
        else:
            result.status = Status.CRASHED
            result.reason = f"the worker failed in phase '{_current_phase(result)}': {type(error).__name__}: {error}"
    replaced = replaced_since(untouched)
    if replaced:
        result.status = Status.INVALID
        result.reason = (f"candidate code replaced {', '.join(replaced[:5])} in the worker process: candidates "
                         "must not patch the harness or torch; no metric of this run can be trusted")
    return result


def main(argv: list[str]) -> int:
    """Only this function's locals hold the nonce and the result file, and only the progress writer's closure
    its key, none reachable from candidate code (the guard refuses frames and the garbage collector's lists)."""
    started = time.perf_counter()
    if len(argv) != 1:
        print("usage: python -m evaluator.worker SPEC_JSON_PATH", file=sys.stderr)
        return 2
    spec_path = Path(argv[0])
    spec = WorkerSpec.read(spec_path)
    spec_path.unlink()  # the nonce leaves the disk before any candidate code runs
    nonce = spec.nonce
    # Created now: once the guard is armed nothing can open a file for writing, candidate code included.
    result_fd = os.open(result_name(nonce), os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600)
    progress = make_writer(spec.progress_fd, spec.progress_key)  # the inherited pipe, also before arming
    spec = dataclasses.replace(spec, nonce="", progress_key="")  # what `run` and candidate code reach holds no secret
    candidate = Path(spec.candidate).resolve()
    result = run(spec, candidate, started, progress)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    sealed = seal(result.to_dict(), nonce).encode()
    os.ftruncate(result_fd, 0)  # whatever candidate code wrote into the descriptor goes
    written = 0
    while written < len(sealed):
        written += os.pwrite(result_fd, sealed[written:], written)
    os._exit(0)  # no candidate thread, finaliser or atexit handler runs after the result is written


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
