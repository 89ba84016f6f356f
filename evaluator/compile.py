"""Compiling the candidate's mixer with torch.compile where it pays, and eager where it does not or fails.

What is compiled is the mixer's `forward`, through a subclass built by `compiled_mixer_class`: the leak
checks (causality, batch independence, the trained model's causality), training and the held-out metrics
all call that one compiled callable, so the checks judge the code path that trains (the latency
measurement runs eager: `eager_latency`). One graph serves every layer and every copy of the mixer (the
module is an input of the graph, not a constant), and the sequence and batch dimensions are marked
dynamic, so a length-generic mixer compiles once per mode (a mixer whose Python loops depend on the
length is specialised and recompiles per length). `fullgraph=True`: a graph break raises instead of
silently running pieces eagerly between graphs, so a candidate either compiles cleanly or is trained
eager, with the reason recorded; no candidate frame ever runs between compiled pieces, which keeps the
guard's stack rule simple (evaluator/guard.py, compile profile). On CUDA the backbone's own parts around
the mixer (norms, MLP, residuals, output head) are compiled too, as graphs of their own
(`compiled_parts`): no graph holds both the candidate's code and the backbone's.

Inductor and Triton write their caches under the work directory and run compilers as child
processes; the worker arms the audit hook and the seccomp filter with their compile profiles then.
Kernels compile in parallel on the worker's threads: on CPU inductor's thread pool runs the C++
compiler, on CUDA a pool of processes *forked* from the worker compiles Triton kernels. A forked child
keeps everything the worker has armed (the audit hook, the seccomp filter, the limits), unlike
inductor's default pool, which starts a fresh interpreter that has none of them.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from contextlib import nullcontext
from typing import Any, Callable, ContextManager

import torch
from torch import nn

from evaluator.backbone import (EAGER_PARTS, BackboneParts, MixerFactory, between_blocks, build_model,
                                last_block_logits, mixer_input)
from evaluator.budgets import Budget
from evaluator.checks import precision_for
from evaluator.checks.common import check_lengths
from evaluator.guard import CompileProfile
from evaluator.measure import synchronize

Setting = str | bool  # "auto", True or False
CACHE_DIR_NAME = "compile-cache"
MAX_COMPILE_THREADS = 8     # kernels compiled at once; the slot's CPU threads bound it further
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


@dataclass(frozen=True)
class Compiled:
    """What every compiled phase builds its models from, the plan as it turned out, and the seconds compiling took."""

    make_mixer: MixerFactory
    parts: BackboneParts
    plan: CompilePlan
    seconds: float


def check_setting(setting: object) -> Setting:
    """`setting` if it is "auto", True or False; else a ValueError that says what is accepted."""
    if setting == "auto" or setting is True or setting is False:
        return setting  # type: ignore[return-value]
    raise ValueError(f"compile must be \"auto\", true or false, got {setting!r}")


def decide_compile(setting: Setting, device_type: str, expected_train_seconds: float | None,
                   pays_after_seconds: float) -> tuple[bool, str]:
    """(compile?, why). `auto` compiles only on CUDA and only when eager training is expected to take at
    least `pays_after_seconds`: compiling cost 20-180 s in the sandbox on an H200 and saved 54% (bytelm) to 90%
    (mqar) of softmax attention's training time, its steps replayed as CUDA graphs (docs/gpu.md)."""
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


def compile_allowance(setting: object, budget: Budget, device_type: str) -> float:
    """Seconds an evaluation that compiles gets beyond its wall budget: its compilation's (cut at
    `compile_wall_fraction` of the wall). So a slow compilation, or one that falls back to eager, never costs the
    training its share of the wall. The orchestrator widens the sandbox's limit by it, the worker its deadlines."""
    try:
        compiles, _ = decide_compile(setting, device_type, expected_train_seconds(budget),
                                     budget.compile_pays_after_seconds)
    except ValueError:  # a malformed setting: the worker reports it
        return 0.0
    return budget.compile_wall_fraction * budget.wall_seconds if compiles else 0.0


def prepare_compiler(work_dir: Path, device: torch.device, threads: int = 1) -> CompileProfile:
    """Before arming: caches under the work directory, `threads` compile workers (forked, see the module's
    docstring), the compiler stack imported (and on CUDA Triton's driver built) while nothing is refused yet,
    and the compilers resolved."""
    cache = (work_dir / CACHE_DIR_NAME).resolve()
    (cache / "tmp").mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache / "inductor")
    os.environ["TRITON_CACHE_DIR"] = str(cache / "triton")
    os.environ["TRITON_HOME"] = str(cache / "triton-home")  # Triton's other files (dumps, overrides), never HOME
    os.environ["TMPDIR"] = str(cache / "tmp")  # inductor's and the compilers' temporary files: writable after arming
    tempfile.tempdir = None  # chosen again from TMPDIR
    threads = max(1, min(threads, MAX_COMPILE_THREADS))
    os.environ["TORCHINDUCTOR_COMPILE_THREADS"] = str(threads)
    import torch._dynamo
    import torch._functorch.config
    import torch._inductor.config
    torch._inductor.config.compile_threads = threads
    # Forked after arming, from trusted frames only (the guard's compile profile): never a fresh interpreter,
    # which would run without the audit hook.
    torch._inductor.config.worker_start_method = "fork"
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


def on_training_path(x: object, device: torch.device) -> bool:
    """Whether a call is on the path training takes: `device`'s tensors, and on CUDA under bf16 autocast.

    Only these calls run compiled. Anything else runs eager: on a CUDA worker, the forward check's CPU probe
    (shapes and gradient reach) and the leak checks' extra float32 probes stay eager rather than compiling graphs
    that training never uses (each costs as much compilation as the training graph)."""
    if not isinstance(x, torch.Tensor) or x.device.type != device.type:
        return False
    return device.type != "cuda" or torch.is_autocast_enabled("cuda")


def _dynamic_batch_and_length(x: torch.Tensor) -> None:
    """One graph for every length and batch size: the first two dimensions are marked dynamic."""
    for dim in range(min(x.dim(), 2)):
        torch._dynamo.maybe_mark_dynamic(x, dim)


def compiled_mixer_class(mixer_class: type[nn.Module], device: torch.device) -> type[nn.Module]:
    """A subclass of the candidate's class whose forward runs compiled on the path training takes
    (`on_training_path`); anything else runs the candidate's own forward."""
    eager = mixer_class.forward
    compiled = torch.compile(eager, fullgraph=True)

    def forward(self: nn.Module, x: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        if not on_training_path(x, device):
            return eager(self, x, *args, **kwargs)
        _dynamic_batch_and_length(x)
        return compiled(self, x, *args, **kwargs)

    namespace = {"forward": forward, "__module__": mixer_class.__module__, "__qualname__": mixer_class.__qualname__,
                 "__doc__": mixer_class.__doc__}
    return type(mixer_class.__name__, (mixer_class,), namespace)


def compiled_parts(device: torch.device) -> BackboneParts:
    """On CUDA the backbone's own parts between the mixers compiled as well (norms, MLP, residuals, output head):
    measured on an H200 at the bytelm `gpu` budget, softmax attention trained at 1.10M tokens/s with only the mixer
    compiled and 1.53M with the backbone's parts too (1.46M through the sandbox; docs/gpu.md). A part spans one
    mixer's output to the next mixer's input (`BackboneParts`), so a step launches as few compiled pieces as the
    mixers' calls allow: the step is bound by the CPU that launches them. The mixer's call stays between them, so no
    graph mixes the candidate's code with the backbone's. On CPU they stay eager: there they are small next to the
    mixer, and inductor's C++ compilation of them costs more than it saves."""
    if device.type != "cuda":
        return EAGER_PARTS

    def compiled(part: Callable[..., Any]) -> Callable[..., Any]:
        graph = torch.compile(part, fullgraph=True)

        def call(*modules_then_tensors: Any) -> Any:
            tensors = [arg for arg in modules_then_tensors if isinstance(arg, torch.Tensor)]
            if not on_training_path(tensors[0], device):
                return part(*modules_then_tensors)
            for tensor in tensors:
                _dynamic_batch_and_length(tensor)
            return graph(*modules_then_tensors)
        return call
    return BackboneParts(compiled(mixer_input), compiled(between_blocks), compiled(last_block_logits))


def warm_up(make_mixer: MixerFactory, parts: BackboneParts, budget: Budget, vocab_size: int, device: torch.device,
            seed: int) -> None:
    """The first compiled steps: every mode and shape the leak checks, training and the metrics call the mixer
    and the backbone's parts at, in the training's precision (the only one compiled),
    so each graph compiles here (timed as compilation) and a failure falls back to eager before any check or
    training step ran. Raises whatever compilation or the compiled forward raised."""
    generator = torch.Generator().manual_seed(seed)
    mixer = make_mixer().to(device)
    precision = precision_for(device)
    for train in (True, False):  # the leak checks call the mixer alone
        mixer.train(train)
        for length in check_lengths(budget):
            x = torch.randn(budget.batch_size, length, budget.d_model, generator=generator).to(device)
            with torch.set_grad_enabled(train), precision.autocast():
                y = mixer(x.requires_grad_(train))
            if train:
                y.float().sum().backward()
    model = build_model(make_mixer, vocab_size, budget, parts).to(device)

    def tokens(batch: int, length: int) -> torch.Tensor:
        return torch.randint(vocab_size, (batch, length), generator=generator).to(device)
    for length in budget.seq_lens:  # training
        with precision.autocast():
            logits = model(tokens(budget.batch_size, length))
        logits.float().sum().backward()
    model.eval()
    with torch.no_grad(), precision.autocast():  # the metrics and the trained checks
        for length in check_lengths(budget):
            model(tokens(budget.batch_size, length))
    synchronize(device)


def eager_latency(plan: CompilePlan) -> ContextManager:
    """Around the latency measurement: compiled functions run eager there. Its lengths (up to 16384) would each
    compile a graph of their own for a mixer with a Python loop over chunks (the gated delta rule's compilation,
    latency shapes included, ran past its 180 s deadline at bytelm `gpu`), and the eager latency is comparable
    between evaluations whatever each compiled."""
    return torch.compiler.set_stance("force_eager") if plan.compiled else nullcontext()


def compile_failure(error: BaseException) -> str:
    """A short reason for a failed compilation: the exception's type and first line, then the cause's."""
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0][:300] if lines else ''}".rstrip(": ")


def plan_compilation(setting: Setting, budget: Budget, device: torch.device) -> CompilePlan:
    """What `decide_compile` says for this budget on this device, with the estimate it used."""
    expected = expected_train_seconds(budget)
    compiled, reason = decide_compile(setting, device.type, expected, budget.compile_pays_after_seconds)
    return CompilePlan(setting, compiled, reason, expected)


def prepare_compilation(setting: Setting, budget: Budget, device: torch.device, work_dir: Path,
                        threads: int = 1) -> tuple[CompilePlan, CompileProfile | None]:
    """The plan, and when it compiles the compiler set up (`prepare_compiler`, `threads` compile workers); a
    compiler that cannot be set up (no C compiler, no Triton) leaves the evaluation eager with the reason."""
    plan = plan_compilation(setting, budget, device)
    if not plan.compiled:
        return plan, None
    try:
        return plan, prepare_compiler(work_dir, device, threads)
    except Exception as error:  # noqa: BLE001 - whatever setting up the compiler raised, the evaluation goes on
        traceback.print_exc()
        return replace(plan, compiled=False, reason="the compiler could not be set up, so the evaluation ran eager: "
                       + compile_failure(error)), None


def compile_or_fall_back(mixer_class: type[nn.Module], make_eager: MixerFactory, plan: CompilePlan, budget: Budget,
                         vocab_size: int, device: torch.device, seed: int) -> Compiled:
    """The factory and parts every compiled phase uses, the plan as it turned out, and the seconds spent compiling.

    Any exception of the first compiled steps, the compiler's own included, leaves the evaluation eager with
    the reason recorded: nothing else has run yet, so no check or training step is lost or repeated."""
    compiled_class = compiled_mixer_class(mixer_class, device)
    parts = compiled_parts(device)

    def make_compiled() -> nn.Module:
        return compiled_class(budget.d_model, budget.n_heads)
    started = time.perf_counter()
    try:
        warm_up(make_compiled, parts, budget, vocab_size, device, seed)
    except Exception as error:  # noqa: BLE001 - whatever compilation raised, the evaluation goes on eager
        traceback.print_exc()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        reason = f"compilation failed, so the evaluation ran eager: {compile_failure(error)}"
        return eager(make_eager, replace(plan, compiled=False, reason=reason), time.perf_counter() - started)
    return Compiled(make_compiled, parts, plan, time.perf_counter() - started)


def eager(make_eager: MixerFactory, plan: CompilePlan, seconds: float) -> Compiled:
    """An evaluation that runs eager after all (`plan` says why), having spent `seconds` trying to compile."""
    torch._dynamo.reset()  # half-built graphs go; eager needs none of them
    return Compiled(make_eager, EAGER_PARTS, plan, seconds)
