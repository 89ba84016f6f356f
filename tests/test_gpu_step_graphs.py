"""Training steps replayed as CUDA graphs (evaluator/step_graphs.py) train as the same steps launched from Python do:
the same losses, at every training length; and a step that cannot be recorded trains un-recorded, with the reason.
Needs CUDA; the GPU machine has no pytest, so this file also runs as a script: `python tests/test_gpu_step_graphs.py`."""
from __future__ import annotations

import math
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluator.backbone import EAGER_PARTS, build_model  # noqa: E402
from evaluator.budgets import get_budget  # noqa: E402
from evaluator.candidate_loader import load_mixer_class  # noqa: E402
from evaluator.compile import CompilePlan, compile_or_fall_back, prepare_compiler  # noqa: E402
from evaluator.harness import TrainResult, seed_everything, train  # noqa: E402
from evaluator.references import get_reference  # noqa: E402
from evaluator.tasks import get_task  # noqa: E402
from tests.support.gpu_tests import cuda_marks, run_as_script  # noqa: E402

WHY = "CUDA graphs need CUDA"
pytestmark = cuda_marks(WHY)
DEVICE = torch.device("cuda")


def _train(make_mixer, parts, graphs: bool, candidate: Path) -> TrainResult:
    task, budget = get_task("mqar"), get_budget("mqar", "smoke")
    data = task.make_data(budget, 0)
    seed_everything(0)
    model = build_model(make_mixer, task.vocab_size(budget), budget, parts).to(DEVICE)
    return train(model, data.train_batch, budget, DEVICE, math.inf, task.vocab_size(budget), candidate,
                 step_graphs=graphs)


@contextmanager
def _environment_kept() -> Iterator[None]:
    """prepare_compiler points TMPDIR and the caches into its work directory, which goes with the test."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        tempfile.tempdir = None


def test_recorded_compiled_steps_give_the_losses_of_launched_ones(tmp_path: Path) -> None:
    with _environment_kept():
        _recorded_compiled_steps_give_the_losses_of_launched_ones(tmp_path)


def _recorded_compiled_steps_give_the_losses_of_launched_ones(tmp_path: Path) -> None:
    budget = get_budget("mqar", "smoke")
    reference = get_reference("softmax_attention").path
    mixer_class = load_mixer_class(reference)
    prepare_compiler(tmp_path, DEVICE, threads=2)
    compiled = compile_or_fall_back(mixer_class, lambda: mixer_class(budget.d_model, budget.n_heads),
                                    CompilePlan(True, True, "the test compiles"), budget,
                                    get_task("mqar").vocab_size(budget), DEVICE, seed=0)
    assert compiled.plan.compiled, compiled.plan.reason
    recorded = _train(compiled.make_mixer, compiled.parts, True, reference)
    launched = _train(compiled.make_mixer, compiled.parts, False, reference)
    assert recorded.step_graphs == {"recorded": True, "shapes": len(budget.seq_lens), "refused": ""}
    assert launched.step_graphs == {"recorded": False, "shapes": 0, "refused": ""}
    assert [step for step, _ in recorded.loss_curve] == [step for step, _ in launched.loss_curve]
    for (step, mine), (_, theirs) in zip(recorded.loss_curve, launched.loss_curve):
        assert abs(mine - theirs) <= 1e-5 * abs(theirs), (step, mine, theirs)


class SyncingMixer(nn.Module):
    """A mixer that reads a value back to the host every call: a step with it cannot be recorded."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.proj = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = 1.0 if x.abs().max().item() < 1e9 else 0.0
        return self.proj(x).cumsum(dim=1) * scale / torch.arange(1, x.shape[1] + 1, device=x.device)[:, None]


def test_a_step_that_cannot_be_recorded_trains_launched_with_the_reason(tmp_path: Path) -> None:
    budget = get_budget("mqar", "smoke")
    candidate = Path(__file__)

    def make_mixer() -> nn.Module:
        return SyncingMixer(budget.d_model, budget.n_heads)
    refused = _train(make_mixer, EAGER_PARTS, True, candidate)
    launched = _train(make_mixer, EAGER_PARTS, False, candidate)
    assert not refused.step_graphs["recorded"] and "failed" in refused.step_graphs["refused"], refused.step_graphs
    assert refused.steps_done == launched.steps_done == budget.steps
    assert refused.loss_curve == launched.loss_curve


if __name__ == "__main__":
    run_as_script(test_recorded_compiled_steps_give_the_losses_of_launched_ones, WHY)
    run_as_script(test_a_step_that_cannot_be_recorded_trains_launched_with_the_reason, WHY)
