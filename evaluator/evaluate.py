"""The orchestrator's side of one evaluation: screen, sandbox the worker, classify, write `eval.json`.

Candidate code is never imported here. The candidate's source is screened statically; if it
passes, it is copied with a spec into a fresh work directory and the worker runs on it in the
sandbox. The worker's answer is accepted only from `result-<nonce>.json` (the nonce left the
disk before candidate code ran) and only with a valid seal (an HMAC under the nonce); everything
else is classified from how the sandbox ended.
`eval.json` is written here, in the out directory, never by the worker.
Progress (`on_progress`) comes through a pipe the worker inherits (`evaluator.progress`): it is
shown to a person and never read into the result.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import secrets
import shutil
import stat
import sys
import tempfile
import threading
import time
from pathlib import Path

from evaluator.budgets import Budget, get_budget
from evaluator.compile import compile_allowance
from evaluator.families.mixer import ALLOWED_IMPORTS
from evaluator.progress import ProgressCallback, ProgressEvent, ProgressReader
from evaluator.records import CheckResult, EvalResult, Status
from evaluator.references import get_reference, list_references
from evaluator.spec import CANDIDATE_NAME, SPEC_NAME, WorkerSpec, nonce_of, result_name, unseal
from evaluator.tasks import get_task
from sandbox.job import Limits, SandboxJob, SandboxOutcome
from sandbox.process_setup import THREAD_COUNT_VARIABLES
from sandbox.runner import run_sandboxed
from sandbox.slots import memory_fraction
from sandbox.screen import screen_source

PROJECT_ROOT = Path(__file__).resolve().parent.parent
GRACE_SECONDS = 30.0          # beyond the budget's wall time: interpreter start-up and writing the result
GPU_MEMORY_FRACTION = 0.9     # the worker caps itself to this share of its GPU (divided among evaluations sharing it)
# Worker threads wait passively: spinning OpenMP threads collapse to a quarter of their speed as
# soon as another process wants one of their cores (measured on 2 cores with one busy neighbour:
# 37k -> 10k tokens/s spinning; 28k idle and 22k with the neighbour when passive). Parallel
# workers and tests sharing a machine are the norm, so steady beats the idle-machine best case.
THREAD_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}
LOG_TAIL_CHARS = 4000
MAX_RESULT_BYTES = 4 * 2**20  # a real result is a few kB
OOM_MARKERS = ("MemoryError", "out of memory", "can't allocate memory")


@dataclasses.dataclass(frozen=True)
class Target:
    path: Path
    complexity_exempt: bool  # only a reference the project marks quadratic (the quality ceiling)


def resolve_target(target: Path | str) -> Target:
    """A candidate file, or a reference by name; exemption comes from the reference list, never the file."""
    quadratic = {ref.path.resolve(): ref.quadratic for ref in list_references()}
    path = Path(target)
    if path.is_file():
        return Target(path, quadratic.get(path.resolve(), False))
    try:
        reference = get_reference(str(target))
    except KeyError:
        names = ", ".join(sorted(ref.name for ref in list_references()))
        raise FileNotFoundError(f"{target!r} is neither a candidate file nor a reference; references: {names}") from None
    return Target(reference.path, reference.quadratic)


def evaluate(target: Path | str, task: str, budget: str = "smoke", device: str = "cpu", seed: int = 0,
             out_dir: Path | None = None, data: Path | None = None, threads: int | None = None,
             stop: threading.Event | None = None, on_progress: ProgressCallback | None = None,
             gate: tuple[str, float] | None = None, sharing: int = 1, compile: str | bool | None = None) -> EvalResult:
    """Evaluate one candidate file (or reference name) on `task` within `budget`; writes out_dir/eval.json.
    `compile` ("auto", True, False) overrides the budget's torch.compile setting (evaluator/compile.py).
    `gate` (proxy name, threshold): a candidate scoring below it is not trained (status skipped).
    `sharing`: evaluations using this GPU at once (a slot `cuda:NxK`); the worker caps its GPU memory to
    its share, GPU_MEMORY_FRACTION / sharing (recorded as `gpu_memory_fraction`).

    Setting `stop` kills the worker at once; the result then says so (status crashed, reason
    starting "stopped") and is meant to be discarded by the caller. `on_progress` is called with each
    `ProgressEvent` (the screen, the worker's phases, checks and logged training steps), in order,
    from a reader thread; every event has been delivered when this returns. It is advisory only.
    """
    started = time.perf_counter()
    task_spec, budget_spec = get_task(task), get_budget(task, budget)
    sandbox_device = _sandbox_device(device)
    resolved = resolve_target(target)
    source = resolved.path.read_text(encoding="utf-8", errors="replace")
    candidate_hash = hashlib.sha256(resolved.path.read_bytes()).hexdigest()
    if data is not None:
        data = Path(data).resolve()
        task_spec.make_data(budget_spec, seed, data)  # a bad --data fails here, before anything is spawned
    out_dir = Path(out_dir) if out_dir else Path("runs") / "evals" / f"{candidate_hash[:12]}-{task}-{budget}-{seed}"
    out_dir.mkdir(parents=True, exist_ok=True)

    screen = screen_source(source, ALLOWED_IMPORTS)
    screen_check = CheckResult("screen", screen.passed, screen.reason,
                               {"problems": [dataclasses.asdict(p) for p in screen.problems]},
                               time.perf_counter() - started)
    if on_progress is not None:
        on_progress(ProgressEvent("check", "screen", screen.passed, 1, 1))
        if screen.passed:
            on_progress(ProgressEvent("phase", "start"))  # the worker's imports take seconds
    if not screen.passed:
        result = EvalResult(Status.INVALID, screen.reason, task, budget, device, seed, candidate_hash,
                            checks=[screen_check])
    else:
        result = _run_worker(resolved, task, budget_spec, sandbox_device, seed, data, threads, out_dir, stop,
                             on_progress, gate, sharing=sharing, compile=compile)
        result.checks.insert(0, screen_check)
    # What was asked for is recorded by the orchestrator, whatever the worker wrote.
    result.task, result.budget, result.device, result.seed = task, budget, device, seed
    result.candidate_hash = candidate_hash
    result.budget_spec = dataclasses.asdict(budget_spec)
    result.timings["total"] = time.perf_counter() - started
    (out_dir / "eval.json").write_text(result.to_json())
    return result


def _run_worker(target: Target, task: str, budget: Budget, device: str, seed: int, data: Path | None,
                threads: int | None, out_dir: Path, stop: threading.Event | None,
                on_progress: ProgressCallback | None, gate: tuple[str, float] | None = None,
                sharing: int = 1, compile: str | bool | None = None) -> EvalResult:
    """Run the worker on a screened candidate in a fresh work directory, which is removed after."""
    work_dir = Path(tempfile.mkdtemp(prefix="archlab-eval-"))
    progress_key = secrets.token_hex(16)
    reader = ProgressReader(on_progress, progress_key) if on_progress is not None else None
    try:
        nonce = secrets.token_hex(16)
        shutil.copyfile(target.path, work_dir / CANDIDATE_NAME)
        on_gpu = device.startswith("cuda")
        fraction = memory_fraction(GPU_MEMORY_FRACTION, sharing) if on_gpu else None
        threads = threads or (2 if on_gpu else len(os.sched_getaffinity(0)))
        WorkerSpec(task=task, budget=budget.name, seed=seed, device="cuda" if on_gpu else "cpu", nonce=nonce,
                   complexity_exempt=target.complexity_exempt, data_path=str(data) if data else None,
                   threads=threads, gpu_memory_fraction=fraction,
                   progress_fd=reader.write_fd if reader else None, progress_key=progress_key if reader else "",
                   gate_proxy=gate[0] if gate else "", gate_below=gate[1] if gate else None, compile=compile,
                   ).write(work_dir / SPEC_NAME)
        job = SandboxJob(
            argv=[sys.executable, "-m", "evaluator.worker", SPEC_NAME], work_dir=work_dir,
            limits=Limits(wall_seconds=wall_limit(budget, compile, device), memory_bytes=budget.memory_bytes,
                          gpu_memory_fraction=fraction),
            readonly_paths=(PROJECT_ROOT, *([data] if data else [])),
            env={"PYTHONPATH": str(PROJECT_ROOT), **THREAD_ENV,
                 **{name: str(threads) for name in THREAD_COUNT_VARIABLES}},
            device=device, pass_fds=(reader.write_fd,) if reader else ())
        submitted = time.time()
        outcome = run_sandboxed(job, stop=stop)
        if reader is not None:
            reader.finish()  # the job is gone: the last events are delivered before the result is read
        for log in (outcome.stdout_path, outcome.stderr_path):
            if Path(log).is_file():
                shutil.copyfile(log, out_dir / Path(log).name)
        result = classify(outcome, work_dir / result_name(nonce), budget, wall_limit(budget, compile, device))
        result.gpu_memory_fraction = fraction
        first_step = result.timings.pop("first_step_epoch", None)
        if first_step:
            result.timings["submit_to_first_step"] = first_step - submitted
        result.timings["sandbox"] = outcome.wall_seconds
        return result
    finally:
        if reader is not None:
            reader.finish(grace_seconds=0)
        shutil.rmtree(work_dir, ignore_errors=True)


def _sandbox_device(device: str) -> str:
    if device == "cuda":
        return "cuda:0"
    if device == "cpu" or (device.startswith("cuda:") and device[5:].isdigit()):
        return device
    raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")


def wall_limit(budget: Budget, compile: str | bool | None, device: str) -> float:
    """Where the sandbox kills the worker: the budget's wall, the grace, and the compilation's allowance when the
    evaluation compiles (evaluator/compile.py, compile_allowance)."""
    setting = budget.compile if compile is None else compile
    allowance = compile_allowance(setting, budget, "cuda" if device.startswith("cuda") else "cpu")
    return budget.wall_seconds + GRACE_SECONDS + allowance


def classify(outcome: SandboxOutcome, result_file: Path, budget: Budget, limit: float) -> EvalResult:
    """The worker's own result when it wrote one, else a status read from how the sandbox ended.

    Only the fields the worker or the sandbox know are filled; `evaluate` adds what was asked for.
    """
    log_tail = _log_tail(outcome)
    if outcome.stopped:
        return _failed(Status.CRASHED, "stopped: the orchestrator stopped the worker before it finished; "
                       "this is no verdict on the candidate", outcome, log_tail)
    if result_file.exists() or result_file.is_symlink():
        try:
            result = EvalResult.from_dict(unseal(_read_result_file(result_file), nonce_of(result_file)))
        except (OSError, ValueError, TypeError, KeyError) as error:
            return _failed(Status.CRASHED, f"the worker's result file is unreadable ({error})", outcome, log_tail)
        result.isolation, result.log_tail = outcome.isolation, log_tail
        return result
    if outcome.timed_out:
        extra = limit - budget.wall_seconds - GRACE_SECONDS
        allowance = f" + {extra:g} s for compiling" if extra else ""
        return _failed(Status.TIMEOUT, f"the worker was killed after {outcome.wall_seconds:.0f} s, at the wall limit "
                       f"of {limit:g} s (budget {budget.wall_seconds:g} s + {GRACE_SECONDS:g} s grace{allowance}): an "
                       "endless loop or a far too slow candidate", outcome, log_tail)
    if outcome.memory_exceeded or any(marker in outcome.stderr_tail for marker in OOM_MARKERS):
        return _failed(Status.OOM, f"the worker ran out of memory (limit {budget.memory_bytes / 2**30:.1f} GiB) "
                       "and was stopped before writing a result", outcome, log_tail)
    ending = f"signal {outcome.signal}" if outcome.signal else f"exit code {outcome.exit_code}"
    last_lines = "\n".join(outcome.stderr_tail.strip().splitlines()[-5:])
    return _failed(Status.CRASHED, f"the worker ended with {ending} without writing a result; last lines of "
                   f"its stderr:\n{last_lines}", outcome, log_tail)


def _read_result_file(path: Path) -> str:
    """The text of a regular file of at most MAX_RESULT_BYTES, never through a symbolic link."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("it is not a regular file")
        if info.st_size > MAX_RESULT_BYTES:
            raise ValueError(f"it holds {info.st_size} bytes, more than {MAX_RESULT_BYTES}")
        return os.read(fd, MAX_RESULT_BYTES + 1).decode()
    finally:
        os.close(fd)


def _failed(status: Status, reason: str, outcome: SandboxOutcome, log_tail: str) -> EvalResult:
    return EvalResult(status, reason, task="", budget="", device="", seed=0, candidate_hash="",
                      isolation=outcome.isolation, log_tail=log_tail)


def _log_tail(outcome: SandboxOutcome) -> str:
    """The last lines of the worker's stdout and stderr, each truncated: only a log, never parsed as a result."""
    parts = []
    for name, text in (("stdout", outcome.stdout_tail), ("stderr", outcome.stderr_tail)):
        if text:
            parts.append(f"--- {name} (last {min(len(text), LOG_TAIL_CHARS)} chars)\n{text[-LOG_TAIL_CHARS:]}")
    return "\n".join(parts)
