"""Several evaluations on one GPU (a slot `cuda:0x4`) give the results of one at a time: the same status and
metrics within bf16 noise, each worker capped to its share of the GPU's memory. Needs CUDA; the GPU machine
has no pytest, so this file also runs as a script: `python tests/test_gpu_packing.py`."""
from __future__ import annotations

import functools
import os
import sys
import threading
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluator.evaluate import GPU_MEMORY_FRACTION, evaluate  # noqa: E402
from evaluator.records import EvalResult  # noqa: E402
from sandbox.executors import LocalPool  # noqa: E402
from sandbox.slots import threads_per_slot  # noqa: E402
from tests.support.gpu_tests import cuda_marks, run_as_script  # noqa: E402

WHY = "packing evaluations on a GPU needs CUDA"
pytestmark = cuda_marks(WHY)

REFERENCES = ("softmax_attention", "gated_delta_rule")
SEEDS = (0, 1)
PACK = len(REFERENCES) * len(SEEDS)  # all at once on cuda:0


def _evaluate_all(slot: str, root: Path) -> dict[tuple[str, int], EvalResult]:
    """Every (reference, seed) on mqar/smoke through a LocalPool of `slot`, all submitted at once; with
    a shared slot, every evaluation waits until all slots are held, so they provably run together."""
    pool = LocalPool([slot])
    together = threading.Barrier(pool.capacity, timeout=120)
    threads = threads_per_slot(len(os.sched_getaffinity(0)), pool.capacity)

    def work(reference: str, seed: int, device: str, stop: threading.Event | None, sharing: int = 1) -> EvalResult:
        if pool.capacity > 1:
            together.wait()
        return evaluate(reference, "mqar", "smoke", device=device, seed=seed, threads=threads, stop=stop,
                        out_dir=root / f"{reference}-{seed}", sharing=sharing)
    try:
        futures = {(ref, seed): pool.submit(functools.partial(work, ref, seed)) for ref in REFERENCES for seed in SEEDS}
        return {key: future.result(timeout=900) for key, future in futures.items()}
    finally:
        pool.shutdown()


def test_packed_evaluations_match_one_at_a_time(tmp_path: Path) -> None:
    alone = _evaluate_all("cuda:0", tmp_path / "alone")
    packed = _evaluate_all(f"cuda:0x{PACK}", tmp_path / "packed")
    for key, single in alone.items():
        shared = packed[key]
        assert single.ok and shared.ok, (key, single.reason, shared.reason)
        assert single.gpu_memory_fraction == GPU_MEMORY_FRACTION
        assert shared.gpu_memory_fraction == GPU_MEMORY_FRACTION / PACK  # what the worker was capped to
        assert shared.peak_memory_bytes <= shared.gpu_memory_fraction * torch.cuda.get_device_properties(0).total_memory
        assert abs(single.metrics["accuracy"] - shared.metrics["accuracy"]) <= 0.02, key
        loss_alone, loss_packed = single.loss_curve[-1][1], shared.loss_curve[-1][1]
        assert abs(loss_alone - loss_packed) <= 0.02 * abs(loss_alone), (key, loss_alone, loss_packed)


if __name__ == "__main__":
    run_as_script(test_packed_evaluations_match_one_at_a_time, WHY)
