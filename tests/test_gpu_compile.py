"""On CUDA a compiled evaluation (the mixer and the backbone's parts around it compiled, evaluator/compile.py) gives
the results of an eager one: same status, metrics and losses within bf16 noise. Needs CUDA; the GPU machine has no
pytest, so this file also runs as a script: `python tests/test_gpu_compile.py`."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluator.budgets import get_budget  # noqa: E402
from evaluator.evaluate import evaluate  # noqa: E402
from tests.support.gpu_tests import cuda_marks, run_as_script  # noqa: E402

WHY = "compiling on a GPU needs CUDA"
pytestmark = cuda_marks(WHY)

REFERENCES = ("softmax_attention",)  # the gated delta rule does not compile within smoke's 45 s (docs/gpu.md)


def test_compiled_evaluations_match_eager_ones(tmp_path: Path) -> None:
    for reference in REFERENCES:
        runs = {compiled: evaluate(reference, "mqar", "smoke", device="cuda", compile=compiled,
                                   out_dir=tmp_path / f"{reference}-{compiled}") for compiled in (False, True)}
        eager, compiled = runs[False], runs[True]
        assert eager.ok and compiled.ok, (reference, eager.reason, compiled.reason)
        assert compiled.compilation["compiled"], (reference, compiled.compilation["reason"])
        assert not eager.compilation["compiled"] and "compile" not in eager.timings
        assert compiled.timings["compile"] > 0
        shapes = len(get_budget("mqar", "smoke").seq_lens)  # each training length's step is a graph of its own
        assert compiled.compilation["step_graphs"] == {"recorded": True, "shapes": shapes, "refused": ""}, reference
        assert "step_graphs" not in eager.compilation
        assert [check.name for check in compiled.checks] == [check.name for check in eager.checks]
        assert abs(eager.metrics["accuracy"] - compiled.metrics["accuracy"]) <= 0.02, reference
        loss_eager, loss_compiled = eager.loss_curve[-1][1], compiled.loss_curve[-1][1]
        assert abs(loss_eager - loss_compiled) <= 0.02 * abs(loss_eager), (reference, loss_eager, loss_compiled)


if __name__ == "__main__":
    run_as_script(test_compiled_evaluations_match_eager_ones, WHY)
