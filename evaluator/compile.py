"""Compiling the candidate's mixer with torch.compile where it pays, and eager where it does not or fails.

What is compiled is the mixer's `forward`, through a subclass built by `compiled_mixer_class`: the
leak checks (causality, batch independence, the trained model's causality), training, the held-out
metrics and the latency measurement all call that one compiled callable, so the checks judge the
code path that trains. One graph serves every layer and every copy of the mixer (the module is an
input of the graph, not a constant), and the sequence and batch dimensions are marked dynamic, so
a length-generic mixer compiles once per mode (a mixer whose Python loops depend on the length is
specialised and recompiles per length). `fullgraph=True`: a graph break raises instead of silently
running pieces eagerly between graphs, so a candidate either compiles cleanly or is trained eager,
with the reason recorded; no candidate frame ever runs between compiled pieces, which keeps the
guard's stack rule simple (evaluator/guard.py, compile profile).

Inductor and Triton write their caches under the work directory and run compilers as child
processes; the worker arms the audit hook and the seccomp filter with their compile profiles then.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from evaluator.backbone import MixerFactory
from evaluator.budgets import Budget
from evaluator.checks import precision_for
from evaluator.checks.common import check_lengths
from evaluator.guard import CompileProfile
from evaluator.measure import synchronize

Setting = str | bool  # "auto", True or False
CACHE_DIR_NAME = "compile-cache"
RECOMPILE_LIMIT = 64         # per code object; a length-specialised mixer recompiles per length and mode
COMPILERS = ("cc", "gcc", "g++", "c++", "clang", "clang++")
LDCONFIG = ("/sbin/ldconfig", "/usr/sbin/ldconfig", "/sbin/ldconfig.real")


@dataclass(frozen=True)
class CompilePlan:
    """Whether the mixer is compiled, as asked and as decided, and why; recorded in EvalResult.compilation."""

    setting: Setting
    compiled: bool
    reason: str
    expected_train_seconds: float | None = None  # the budget's eager estimate (expected_train_seconds)

    def record(self) -> dict[str, object]:
        return {"setting": self.setting, "compiled": self.compiled, "reason": self.reason,
                "expected_train_seconds": self.expected_train_seconds}


def check_setting(setting: object) -> Setting:
    """`setting` if it is "auto", True or False; else a ValueError that says what is accepted."""
    if setting == "auto" or setting is True or setting is False:
        return setting  # type: ignore[return-value]
    raise ValueError(f"compile must be \"auto\", true or false, got {setting!r}")


def decide_compile(setting: Setting, device_type: str, expected_train_seconds: float | None,
                   pays_after_seconds: float) -> tuple[bool, str]:
    """(compile?, why). `auto` compiles only on CUDA and only when eager training is expected to take at
    least `pays_after_seconds`: compiling cost 22-180 s in the sandbox on an H200 and saved 10-60% of the training
    time, depending on the mixer (docs/gpu.md)."""
    setting = check_setting(setting)
    if setting is False:
        return False, "compile is off for this evaluation"
    if setting is True:
        return True, "compile is on for this evaluation"
    if device_type != "cuda":
        return False, (f"auto compiles only on CUDA; on {device_type} inductor's C++ compilation costs more than "
                       "it saves")
    if expected_train_seconds is None:
        return False, "auto: this budget has no measured eager_tokens_per_second to expect a training time from"
    expected = f"auto: eager training is expected to take {expected_train_seconds:.0f} s"
    if expected_train_seconds < pays_after_seconds:
        return False, f"{expected}, under the {pays_after_seconds:g} s after which compiling pays"
    return True, f"{expected}, at least the {pays_after_seconds:g} s after which compiling pays"


def expected_train_seconds(budget: Budget) -> float | None:
    """Eager training time of the budget's baseline: its tokens at the measured `eager_tokens_per_second`.

    Deterministic (from the budget alone), so a replay decides as the run did, and known before the
    worker arms its guards, whose compile profile is armed only when the evaluation compiles."""
    if not budget.eager_tokens_per_second:
        return None
    tokens = budget.steps * budget.batch_size * sum(budget.seq_lens) / len(budget.seq_lens)
    return tokens / budget.eager_tokens_per_second


def prepare_compiler(work_dir: Path, device: torch.device) -> CompileProfile:
    """Before arming: caches under the work directory, no compile worker pool, the compiler stack imported
    (and on CUDA Triton's driver built) while nothing is refused yet, and the compilers resolved."""
    cache = (work_dir / CACHE_DIR_NAME).resolve()
    (cache / "tmp").mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache / "inductor")
    os.environ["TRITON_CACHE_DIR"] = str(cache / "triton")
    os.environ["TRITON_HOME"] = str(cache / "triton-home")  # Triton's other files (dumps, overrides), never HOME
    os.environ["TMPDIR"] = str(cache / "tmp")  # inductor's and the compilers' temporary files: writable after arming
    tempfile.tempdir = None  # chosen again from TMPDIR
    os.environ["TORCHINDUCTOR_COMPILE_THREADS"] = "1"  # a process pool would fork workers that import the candidate
    import torch._dynamo
    import torch._functorch.config
    import torch._inductor.config
    torch._inductor.config.compile_threads = 1
    # On CUDA the first call of a compiled kernel autotunes and saves the result from inside the candidate's (dynamo
    # rewritten) frame, where the guard refuses writes: the choice is kept in memory only.
    torch._inductor.config.autotune_local_cache = False
    torch._dynamo.config.recompile_limit = RECOMPILE_LIMIT
    torch._dynamo.config.fail_on_recompile_limit_hit = True  # never run a shape eagerly behind the checks' back
    torch._functorch.config.donated_buffer = False  # the leak checks take gradients twice (retain_graph=True)
    executables = {shutil.which(name) for name in COMPILERS} | {p for p in LDCONFIG if os.path.exists(p)}
    executables |= {os.environ.get(name) for name in ("CC", "CXX")}
    _compile_something(device)
    if device.type == "cuda":  # after the first compilation: inductor points TRITON_PTXAS_PATH at torch's own ptxas then
        executables |= _triton_compilers()
    return CompileProfile(cache, frozenset(os.path.realpath(p) for p in executables if p))


def _compile_something(device: torch.device) -> None:
    """A tiny compiled forward and backward: the compiler stack's lazy imports, kernel registrations and
    (on CUDA) Triton's driver happen now, before the integrity snapshot and the guards."""
    x = torch.ones(8, 8, device=device, requires_grad=True)
    torch.compile(lambda t: (t * 2).sin().sum(), fullgraph=True)(x).backward()
    synchronize(device)
    torch._dynamo.reset()


def _triton_compilers() -> set[str | None]:
    """Triton's ptxas, wherever this Triton or inductor looks for it (inductor prefers the one in torch/bin)."""
    import triton
    found: set[str | None] = {os.environ.get("TRITON_PTXAS_PATH"), shutil.which("ptxas")}
    found |= {str(p) for p in (Path(torch.__file__).parent / "bin").glob("ptxas*")}
    found |= {str(p) for p in (Path(triton.__file__).parent / "backends" / "nvidia" / "bin").glob("ptxas*")}
    return found


def compiled_mixer_class(mixer_class: type[nn.Module], device: torch.device) -> type[nn.Module]:
    """A subclass of the candidate's class whose forward runs compiled on the path training takes: `device`'s
    tensors, and on CUDA under the training's bf16 autocast.

    Anything else runs the candidate's own forward: on a CUDA worker the forward check's CPU probe (shapes and
    gradient reach) and the leak checks' extra float32 probes stay eager rather than compiling graphs that
    training never uses (each costs as much compilation as the training graph)."""
    eager = mixer_class.forward
    compiled = torch.compile(eager, fullgraph=True)

    def on_training_path(x: object) -> bool:
        if not isinstance(x, torch.Tensor) or x.device.type != device.type:
            return False
        return device.type != "cuda" or torch.is_autocast_enabled("cuda")

    def forward(self: nn.Module, x: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        if not on_training_path(x):
            return eager(self, x, *args, **kwargs)
        for dim in range(min(x.dim(), 2)):  # batch and sequence: one graph for every length and batch size
            torch._dynamo.maybe_mark_dynamic(x, dim)
        return compiled(self, x, *args, **kwargs)

    namespace = {"forward": forward, "__module__": mixer_class.__module__, "__qualname__": mixer_class.__qualname__,
                 "__doc__": mixer_class.__doc__}
    return type(mixer_class.__name__, (mixer_class,), namespace)


def warm_up(make_mixer: MixerFactory, budget: Budget, device: torch.device, seed: int) -> None:
    """The first compiled steps: every mode and length the leak checks, training and the latency measurement call
    the mixer at, in the training's precision (the only one compiled), so each graph compiles here (timed as
    compilation) and a failure falls back to eager before any check or training step ran. Raises whatever
    compilation or the compiled forward raised."""
    generator = torch.Generator().manual_seed(seed)
    mixer = make_mixer().to(device)
    precision = precision_for(device)
    for train in (True, False):
        mixer.train(train)
        for length in check_lengths(budget):
            x = torch.randn(budget.batch_size, length, budget.d_model, generator=generator).to(device)
            with torch.set_grad_enabled(train), precision.autocast():
                y = mixer(x.requires_grad_(train))
            if train:
                y.float().sum().backward()
    mixer.eval()
    for length in budget.latency_lengths:  # the latency measurement's batch of one is a shape of its own
        x = torch.randn(1, length, budget.d_model, generator=generator).to(device)
        with torch.no_grad(), precision.autocast():
            mixer(x)
    synchronize(device)


def compile_failure(error: BaseException) -> str:
    """A short reason for a failed compilation: the exception's type and first line, then the cause's."""
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0][:300] if lines else ''}".rstrip(": ")


def plan_compilation(setting: Setting, budget: Budget, device: torch.device) -> CompilePlan:
    """What `decide_compile` says for this budget on this device, with the estimate it used."""
    expected = expected_train_seconds(budget)
    compiled, reason = decide_compile(setting, device.type, expected, budget.compile_pays_after_seconds)
    return CompilePlan(setting, compiled, reason, expected)


def prepare_compilation(setting: Setting, budget: Budget, device: torch.device,
                        work_dir: Path) -> tuple[CompilePlan, CompileProfile | None]:
    """The plan, and when it compiles the compiler set up (`prepare_compiler`); a compiler that cannot be set
    up (no C compiler, no Triton) leaves the evaluation eager with the reason."""
    plan = plan_compilation(setting, budget, device)
    if not plan.compiled:
        return plan, None
    try:
        return plan, prepare_compiler(work_dir, device)
    except Exception as error:  # noqa: BLE001 - whatever setting up the compiler raised, the evaluation goes on
        traceback.print_exc()
        return replace(plan, compiled=False, reason="the compiler could not be set up, so the evaluation ran eager: "
                       + compile_failure(error)), None


def compile_or_fall_back(mixer_class: type[nn.Module], make_eager: MixerFactory, plan: CompilePlan, budget: Budget,
                         device: torch.device, seed: int) -> tuple[MixerFactory, CompilePlan, float]:
    """(the factory every compiled phase uses, the plan as it turned out, seconds spent compiling).

    Any exception of the first compiled steps, the compiler's own included, leaves the evaluation eager with
    the reason recorded: nothing else has run yet, so no check or training step is lost or repeated."""
    compiled_class = compiled_mixer_class(mixer_class, device)

    def make_compiled() -> nn.Module:
        return compiled_class(budget.d_model, budget.n_heads)
    started = time.perf_counter()
    try:
        warm_up(make_compiled, budget, device, seed)
    except Exception as error:  # noqa: BLE001 - whatever compilation raised, the evaluation goes on eager
        traceback.print_exc()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        reason = f"compilation failed, so the evaluation ran eager: {compile_failure(error)}"
        return make_eager, replace(plan, compiled=False, reason=reason), time.perf_counter() - started
    return make_compiled, plan, time.perf_counter() - started
