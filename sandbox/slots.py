"""Device slots: where evaluations run and how many share one GPU. Pure parsing and arithmetic, no torch,
so the CLI, the typed config and the executors read a `--devices` spec the same way.

A spec is a comma-separated list of `cpu`, `cuda` (= `cuda:0`), `cuda:N`, `cuda:NxK` (K evaluations at
once on GPU N) or, alone, `auto` (every visible GPU, K each from the budget's measured figures: see
`auto_sharing`). Each evaluation on a GPU shared by K slots caps its GPU memory to 1/K of the usual share.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

AUTO = "auto"
MAX_SHARING = 8  # more evaluations than this on one GPU only queue on its streams
SPEC_HELP = ("write 'cpu' or 'cuda:N', or 'cuda:NxK' for K evaluations at once on GPU N (e.g. cuda:0x4), "
             "comma-separated; 'cuda' means cuda:0; 'auto' (alone) packs every visible GPU")
_SLOT = re.compile(r"^(?:(?P<cpu>cpu)|cuda(?::(?P<index>\d+))?(?:x(?P<sharing>\d+))?)$")


@dataclass(frozen=True)
class DeviceSlot:
    """One evaluation at a time on `device` ("cpu" or "cuda:N"), which `sharing` slots use at once."""

    device: str
    sharing: int = 1


@dataclass(frozen=True)
class Sharing:
    """How many evaluations `auto` puts on each GPU, and why (shown to the user)."""

    per_gpu: int
    reason: str


def _one(spec: str) -> tuple[str, int]:
    """One spec (not `auto`) -> (device, evaluations at once on it)."""
    match = _SLOT.match(spec.strip())
    if match is None:
        raise ValueError(f"device slot {spec!r}: {SPEC_HELP}")
    if match["cpu"]:
        return "cpu", 1
    sharing = int(match["sharing"] or 1)
    if sharing < 1:
        raise ValueError(f"device slot {spec!r}: K in cuda:NxK is how many evaluations run at once, at least 1")
    return f"cuda:{int(match['index'] or 0)}", sharing


def parse_slots(specs: list[str]) -> list[DeviceSlot]:
    """Every slot of a list of specs, in order: `cuda:1x3` is three slots on cuda:1, each with sharing 3.
    A GPU named twice (`cuda:0,cuda:0`) is shared by all its slots. `auto` must be resolved first (`auto_slots`)."""
    if AUTO in (spec.strip() for spec in specs):
        raise ValueError(f"device slots {specs}: 'auto' stands alone and is resolved when a run starts "
                         "(`archlab run --devices auto`)")
    devices: list[str] = []
    for spec in specs:
        device, count = _one(spec)
        devices += [device] * count
    on_each = {device: devices.count(device) for device in devices if device != "cpu"}
    crowded = {device: count for device, count in on_each.items() if count > MAX_SHARING}
    if crowded:
        raise ValueError(f"device slots {specs}: at most {MAX_SHARING} evaluations at once on one GPU "
                         f"(got {', '.join(f'{d}: {n}' for d, n in crowded.items())})")
    return [DeviceSlot(device, on_each.get(device, 1)) for device in devices]


def check_specs(specs: list[str]) -> list[str]:
    """The specs, stripped, if they parse (or are `auto` alone); a ValueError that says what to write if not."""
    specs = [spec.strip() for spec in specs]
    if specs == [AUTO]:
        return specs
    parse_slots(specs)
    return specs


def auto_sharing(gpu_memory_bytes: int, peak_memory_bytes: int | None, busy_fraction: float | None,
                 cpu_cores_per_gpu: int) -> Sharing:
    """K = min(floor(0.9 * memory / peak), round(1 / busy), cores // 2, 8), at least 1; K = 1 when the
    budget's peak memory or GPU busy fraction is unknown (not measured on a GPU yet)."""
    if not peak_memory_bytes or not busy_fraction:
        return Sharing(1, "the budget's GPU peak memory and busy fraction are not measured yet "
                          "(bench/bench_gpu_throughput.py measures them): one evaluation per GPU")
    limits = {
        "GPU memory": math.floor(0.9 * gpu_memory_bytes / peak_memory_bytes),
        "GPU busy fraction": max(1, round(1 / busy_fraction)),
        "CPU cores": cpu_cores_per_gpu // 2,
        "the most per GPU": MAX_SHARING,
    }
    per_gpu = max(1, min(limits.values()))
    bound = min(limits, key=limits.__getitem__)
    return Sharing(per_gpu, f"{per_gpu} per GPU, limited by {bound} ("
                            + ", ".join(f"{name} allows {value}" for name, value in limits.items()) + ")")


def auto_slots(gpus: int, sharing: Sharing) -> list[str]:
    """The specs `auto` stands for: every GPU, each shared by `sharing.per_gpu`."""
    return [f"cuda:{index}x{sharing.per_gpu}" if sharing.per_gpu > 1 else f"cuda:{index}" for index in range(gpus)]


def threads_per_slot(cores: int, slots: int) -> int:
    """This machine's cores split between the evaluations that run at once."""
    return max(1, cores // max(1, slots))


def memory_fraction(base: float, sharing: int) -> float:
    """The share of its GPU's memory an evaluation may use when `sharing` evaluations use the GPU at once."""
    return base / max(1, sharing)
