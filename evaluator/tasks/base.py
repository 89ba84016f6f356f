"""What every task provides: data from a seed, the loss mask, metrics, and its judging rules.

A task owns its data and its metrics; the harness owns the training loop and the loss. The
loss mask travels inside each batch as `IGNORE_INDEX` targets, so the harness computes one
masked cross-entropy for every task and candidate code never sees the targets.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import torch

IGNORE_INDEX = -100  # target value at positions that carry no loss (F.cross_entropy's default)


@dataclass(frozen=True)
class Batch:
    """Token inputs and next-token targets, both [B, T] int64; targets are IGNORE_INDEX where masked."""

    inputs: torch.Tensor
    targets: torch.Tensor

    @property
    def loss_mask(self) -> torch.Tensor:
        return self.targets != IGNORE_INDEX

    @property
    def tokens(self) -> int:
        return self.inputs.numel()

    def to(self, device: torch.device | str) -> "Batch":
        """On CUDA through pinned memory: a copy from pageable memory may wait for the GPU's queued work,
        which would stop the training loop from issuing the next step while the GPU runs this one."""
        if torch.device(device).type != "cuda":
            return Batch(self.inputs.to(device), self.targets.to(device))
        return Batch(_to_cuda(self.inputs, device), _to_cuda(self.targets, device))

    def copy_into(self, into: "Batch") -> None:
        """Into `into`'s tensors (of the same shapes, on the device), through pinned memory as `to` copies."""
        for source, target in ((self.inputs, into.inputs), (self.targets, into.targets)):
            target.copy_(_pinned(source) if target.is_cuda else source, non_blocking=True)


def _to_cuda(tensor: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    return _pinned(tensor).to(device, non_blocking=True)


def _pinned(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.pin_memory() if tensor.device.type == "cpu" else tensor


class TaskData(Protocol):
    """The data of one evaluation: a deterministic training stream and a held-out evaluation set."""

    def train_batch(self, step: int) -> Batch:
        """The batch of training step `step` (on CPU), the same for a given seed whatever the order."""

    def eval_batches(self) -> list[tuple[int, Batch]]:
        """(sequence length, batch) pairs of the held-out set, never seen in training."""

    def describe(self) -> dict[str, Any]:
        """Facts about the data that belong in the metrics (e.g. the corpus hash)."""


Model = Callable[[torch.Tensor], torch.Tensor]  # tokens [B, T] -> logits [B, T, V]


class Task(Protocol):
    name: str
    baseline: str                   # reference whose fitness is zero: the bar to beat
    ceiling: str                    # reference taken as the quality ceiling (implausibility checks)
    description: str                # what the task measures, shown to the LLM researcher
    max_complexity_exponent: float  # forward time must grow no faster than T ** this

    def vocab_size(self, budget: Any) -> int: ...

    def make_data(self, budget: Any, seed: int, data_path: Path | None = None) -> TaskData: ...

    def metrics(self, model: Model, data: TaskData, device: torch.device) -> dict[str, Any]:
        """Held-out metrics of a trained model; the caller has put it in eval mode under no_grad."""
