"""A compiled evaluation's training steps replayed as CUDA graphs, so the CPU no longer sets the step's pace.

A compiled step at bytelm `gpu` launches some 400 kernels through 13 compiled regions, forward and backward,
and on an H200 the Python that launches them took as long as the GPU took to run them (docs/gpu.md, "MFU"): the
step ran at the speed of the host's CPU. A CUDA graph records one step's kernels once and launches them all
with one call.

What is recorded is the step exactly as it runs un-recorded: the compiled mixer graph the checks ran, the
backbone's compiled parts, the loss, backward, gradient clipping and the fused optimizer (whose step count and
learning rate are device tensors). Recording runs under `fail_on_recompile`: nothing is traced anew, so the graph
holds the kernels of graphs already compiled (by the worker's warm-up, before the checks, at every training shape)
and nothing of the candidate's code that the compiled path had not run. Each shape's first step runs un-recorded (the warm-up recording
needs: its gradients, cuBLAS's workspace on this stream, any autotuning); its second is recorded, then replayed.
A recording that fails (a step that synchronises with the host, or runs out of memory) leaves every later step
un-recorded, with the reason kept for the evaluation's record.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from evaluator.compile import compile_failure
from evaluator.tasks.base import Batch

Step = Callable[[Batch], torch.Tensor]  # one training step on the device's batch; returns its loss
Shape = tuple[tuple[int, ...], tuple[int, ...]]
MAX_SHAPES = 8  # a budget trains at 1 to 3 lengths; steps of any further shape run un-recorded


@dataclass(frozen=True)
class _Recorded:
    graph: torch.cuda.CUDAGraph
    batch: Batch          # the static tensors the graph reads: each replay's batch is copied into them
    loss: torch.Tensor    # the static tensor the graph writes the loss to


class StepGraphs:
    """Runs training steps, recording each shape's steps as a CUDA graph when `record` (CUDA only).

    Use as a context manager around the training loop: the steps run on a stream of their own (a graph is recorded
    from a stream other than the default one, and warmed up on the stream it is recorded on)."""

    def __init__(self, step: Step, device: torch.device, record: bool):
        self.step, self.device, self.record = step, device, record and device.type == "cuda"
        self.recorded: dict[Shape, _Recorded] = {}
        self.warmed: set[Shape] = set()
        self.refused = "" if self.record or not record else f"CUDA graphs need CUDA, and this is {device.type}"
        self._stream = torch.cuda.Stream(device) if self.record else None
        self._stream_context = torch.cuda.stream(self._stream) if self._stream is not None else None

    def __enter__(self) -> "StepGraphs":
        if self._stream is not None:
            self._stream.wait_stream(torch.cuda.current_stream(self.device))  # the model was built on the default one
            self._stream_context.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stream is not None:
            self._stream_context.__exit__(*exc)
            torch.cuda.current_stream(self.device).wait_stream(self._stream)

    def __call__(self, batch: Batch) -> torch.Tensor:
        shape = (tuple(batch.inputs.shape), tuple(batch.targets.shape))
        recorded = self.recorded.get(shape) or self._record_if_due(shape, batch)
        if recorded is None:
            self.warmed.add(shape)
            return self.step(batch.to(self.device))
        batch.copy_into(recorded.batch)
        recorded.graph.replay()  # for a graph just recorded, the step's only run: recording runs nothing
        return recorded.loss

    def _record_if_due(self, shape: Shape, batch: Batch) -> _Recorded | None:
        """A new graph for `shape` once its first step has run, up to MAX_SHAPES graphs (each holds its own memory)."""
        if not self.record or self.refused or shape not in self.warmed or len(self.recorded) >= MAX_SHAPES:
            return None
        static = batch.to(self.device)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.compiler.set_stance("fail_on_recompile"), torch.cuda.graph(graph, stream=self._stream):
                loss = self.step(static)
        except Exception as error:  # noqa: BLE001 - whatever stopped the recording, training goes on un-recorded
            self.refused = f"recording the step at shape {list(shape[0])} failed: {compile_failure(error)}"
            return None
        self.recorded[shape] = _Recorded(graph, static, loss)
        return self.recorded[shape]

    def outcome(self) -> dict[str, object]:
        """For the evaluation's record: whether steps were replayed as CUDA graphs, at how many shapes, and why not
        (`refused`: empty unless recording was asked for and did not happen, or stopped)."""
        return {"recorded": bool(self.recorded), "shapes": len(self.recorded), "refused": self.refused}

