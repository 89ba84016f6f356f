"""Checks of what a command is pointed at on this machine (a device, a data path), made before
any work starts so that a wrong one is a usage error that says what to fix."""
from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from archlab.errors import UsageError
from sandbox.slots import Sharing, auto_sharing, auto_slots, parse_slots

if TYPE_CHECKING:
    from evaluator.budgets import Budget

DEVICE_PATTERN = re.compile(r"^(cpu|cuda(:\d+)?)$")


def check_device(device: str, flag: str = "--device") -> None:
    """'cpu', 'cuda' or 'cuda:N', and a CUDA device must exist here."""
    if not DEVICE_PATTERN.match(device):
        raise UsageError(f"{flag} {device!r}: use cpu, cuda or cuda:N")
    if device == "cpu":
        return
    import torch  # only for a CUDA device: torch takes a second or two to import

    if not torch.cuda.is_available():
        raise UsageError(f"{flag} {device}: CUDA is not available on this machine (torch {torch.__version__}"
                         f"{'' if torch.version.cuda else ', a CPU-only build'}); use {flag} cpu, or run "
                         "on a machine with a GPU (`archlab doctor` shows what is available)")
    index = int(device.split(":")[1]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        raise UsageError(f"{flag} {device}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                         f"cuda:0 to cuda:{torch.cuda.device_count() - 1}")


def check_slots(specs: list[str], flag: str = "--devices") -> None:
    """Device slot specs (sandbox.slots) whose GPUs exist here; `auto` must be resolved first."""
    try:
        devices = {slot.device for slot in parse_slots(specs)}
    except ValueError as error:
        raise UsageError(f"{flag}: {error}") from error
    for device in sorted(devices):
        check_device(device, flag)


def resolve_auto(budgets: list[tuple[str, str]], compile: bool | str | None = None,
                 flag: str = "--devices") -> tuple[list[str], Sharing]:
    """`auto`: every visible GPU, each shared by the K that the least roomy of `budgets` (task, budget)
    allows (sandbox.slots.auto_sharing), from the figures of the evaluations the run makes (`compile`: the
    run's setting, None for each budget's); a usage error where there is no GPU."""
    import torch

    from evaluator.budgets import get_budget

    if not torch.cuda.is_available() or torch.cuda.device_count() == 0:
        raise UsageError(f"{flag} auto packs this machine's GPUs, and it has none (torch {torch.__version__}"
                         f"{'' if torch.version.cuda else ', a CPU-only build'}); leave {flag} out to use the CPU")
    gpus = torch.cuda.device_count()
    memory = min(torch.cuda.get_device_properties(index).total_memory for index in range(gpus))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    choices = []
    for spec in (get_budget(task, name) for task, name in budgets):
        figures = gpu_figures(spec, compile)
        sharing = auto_sharing(memory, figures.peak_memory_bytes, figures.busy_fraction, cores // gpus)
        choices.append(Sharing(sharing.per_gpu, f"{sharing.reason}; {figures.which}"))
    sharing = min(choices, key=lambda choice: choice.per_gpu)
    return auto_slots(gpus, sharing), sharing


@dataclass(frozen=True)
class GpuFigures:
    """One evaluation's measured peak GPU memory and busy fraction, and which evaluations they are of."""

    peak_memory_bytes: int | None
    busy_fraction: float | None
    which: str


def gpu_figures(budget: "Budget", compile: bool | str | None) -> GpuFigures:
    """The budget's figures for the evaluations a run with this `compile` setting makes on a GPU: compiled ones
    spend longer setting up and less time training, so the GPU is idle more of their wall time (bytelm `gpu`:
    busy 35% compiled, 77% eager) and more of them fit on it."""
    import torch

    from evaluator.compile import plan_compilation

    compiles = plan_compilation(budget.compile if compile is None else compile, budget, torch.device("cuda")).compiled
    if compiles and budget.gpu_busy_fraction_compiled:
        return GpuFigures(budget.gpu_peak_memory_bytes_compiled or budget.gpu_peak_memory_bytes,
                          budget.gpu_busy_fraction_compiled, "the budget's figures for compiled evaluations")
    which = ("the budget's eager figures (its compiled ones are not measured)" if compiles
             else "the budget's figures for eager evaluations")
    return GpuFigures(budget.gpu_peak_memory_bytes, budget.gpu_busy_fraction, which)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def check_data(path: Path, flag: str = "--data") -> None:
    """A regular text file or a folder; anything else (a FIFO, a device) would hang or mislead."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise UsageError(f"{flag} {path} does not exist; give a text file or a folder of text files") from None
    except OSError as error:
        raise UsageError(f"{flag} {path}: {error.strerror}") from error
    if stat.S_ISDIR(mode) or stat.S_ISREG(mode):
        return
    raise UsageError(f"{flag} {path} is {_kind(mode)}; give a regular text file or a folder of text files")
