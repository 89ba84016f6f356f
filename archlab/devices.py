"""Checks of what a command is pointed at on this machine (a device, a data path), made before
any work starts so that a wrong one is a usage error that says what to fix."""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from archlab.errors import UsageError
from sandbox.slots import Sharing, auto_sharing, auto_slots, parse_slots

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


def resolve_auto(budgets: list[tuple[str, str]], flag: str = "--devices") -> tuple[list[str], Sharing]:
    """`auto`: every visible GPU, each shared by the K that the least roomy of `budgets` (task, budget)
    allows (sandbox.slots.auto_sharing); a usage error where there is no GPU."""
    import torch

    from evaluator.budgets import get_budget

    if not torch.cuda.is_available() or torch.cuda.device_count() == 0:
        raise UsageError(f"{flag} auto packs this machine's GPUs, and it has none (torch {torch.__version__}"
                         f"{'' if torch.version.cuda else ', a CPU-only build'}); leave {flag} out to use the CPU")
    gpus = torch.cuda.device_count()
    memory = min(torch.cuda.get_device_properties(index).total_memory for index in range(gpus))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    choices = [auto_sharing(memory, spec.gpu_peak_memory_bytes, spec.gpu_busy_fraction, cores // gpus)
               for spec in (get_budget(task, name) for task, name in budgets)]
    sharing = min(choices, key=lambda choice: choice.per_gpu)
    return auto_slots(gpus, sharing), sharing


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
