"""Compiled training steps replayed as CUDA graphs against the same steps launched from Python, side by side.

The model is built and compiled as the worker builds it (the mixer and the backbone's parts, `compile_or_fall_back`),
then trained by `evaluator.harness.train` for `--steps` steps from the same seed, once with `step_graphs` and once
without, alternating which goes first, for `--rounds` rounds in one process. Prints per training: ms per step,
tokens/s, MFU (training FLOPs per token counted on the reference, as bench_gpu_throughput.py counts them), the CPU
seconds per step of the process, and the largest difference between the two loss curves of a round (the same
kernels on the same batches: it should be 0). The last line is one JSON object. Needs CUDA, torch and numpy.

    python bench/bench_step_graphs.py --task bytelm --budget gpu --reference softmax_attention --steps 300
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench_gpu_throughput import PEAK_BF16_TFLOPS, flops_per_token  # noqa: E402
from evaluator.backbone import build_model  # noqa: E402
from evaluator.budgets import get_budget  # noqa: E402
from evaluator.candidate_loader import load_mixer_class  # noqa: E402
from evaluator.compile import CompilePlan, compile_or_fall_back, prepare_compiler  # noqa: E402
from evaluator.harness import seed_everything, train  # noqa: E402
from evaluator.references import get_reference  # noqa: E402
from evaluator.tasks import get_task  # noqa: E402


def one_training(compiled, budget, data, vocab_size: int, device: torch.device, candidate: Path, seed: int,
                 graphs: bool) -> dict:
    seed_everything(seed)
    model = build_model(compiled.make_mixer, vocab_size, budget, compiled.parts).to(device)
    cpu_started = time.process_time()
    result = train(model, data.train_batch, budget, device, math.inf, vocab_size, candidate, step_graphs=graphs)
    cpu_seconds = time.process_time() - cpu_started
    tokens_per_step = budget.batch_size * sum(budget.seq_lens) / len(budget.seq_lens)
    return {"graphs": graphs, "tokens_per_second": result.tokens_per_second,
            "ms_per_step": 1000 * tokens_per_step / result.tokens_per_second,
            "cpu_ms_per_step": 1000 * cpu_seconds / result.steps_done, "loss_curve": result.loss_curve,
            "step_graphs": result.step_graphs}


def curve_difference(one: dict, other: dict) -> float:
    return max(abs(a[1] - b[1]) for a, b in zip(one["loss_curve"], other["loss_curve"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="bytelm")
    parser.add_argument("--budget", default="gpu")
    parser.add_argument("--reference", default="softmax_attention")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compile-threads", type=int, default=8)
    args = parser.parse_args()
    if args.rounds < 1 or args.steps < 2:
        parser.error("--rounds must be at least 1 and --steps at least 2 (step 0 is the warm-up tokens/s leaves out)")
    if not torch.cuda.is_available():
        sys.exit("bench_step_graphs.py needs CUDA: CUDA graphs exist only there")
    device = torch.device("cuda")
    task = get_task(args.task)
    budget = dataclasses.replace(get_budget(args.task, args.budget), steps=args.steps)
    vocab_size = task.vocab_size(budget)
    data = task.make_data(budget, args.seed)
    candidate = get_reference(args.reference).path
    mixer_class = load_mixer_class(candidate)
    peak = next((value for key, value in PEAK_BF16_TFLOPS.items() if key in torch.cuda.get_device_name()), None)
    flops = flops_per_token(args.task, args.budget, args.reference, "cuda")

    with tempfile.TemporaryDirectory() as work:
        prepare_compiler(Path(work), device, args.compile_threads)
        started = time.perf_counter()
        compiled = compile_or_fall_back(mixer_class, lambda: mixer_class(budget.d_model, budget.n_heads),
                                        CompilePlan(True, True, "the benchmark compiles"), budget, vocab_size,
                                        device, args.seed)
        compile_seconds = time.perf_counter() - started
        if not compiled.plan.compiled:
            sys.exit(f"compilation failed: {compiled.plan.reason}")
        rounds = []
        for index in range(args.rounds):
            order = (True, False) if index % 2 == 0 else (False, True)
            runs = {graphs: one_training(compiled, budget, data, vocab_size, device, candidate, args.seed, graphs)
                    for graphs in order}
            difference = curve_difference(runs[True], runs[False])
            rounds.append({"graphs": runs[True], "plain": runs[False], "loss_difference": difference})
            if index == 0:  # the noise floor: the same steps launched twice (atomics make some kernels nondeterministic)
                again = one_training(compiled, budget, data, vocab_size, device, candidate, args.seed, False)
                noise = curve_difference(runs[False], again)
                print(f"two launched trainings: largest loss difference {noise:.3g}", flush=True)
            for name in ("graphs", "plain"):
                run = rounds[-1][name]
                run["mfu"] = flops * run["tokens_per_second"] / (peak * 1e12) if peak else None
                mfu = f"{100 * run['mfu']:.1f}%" if run["mfu"] is not None else "-"
                print(f"round {index} {name:6s}: {run['ms_per_step']:.2f} ms/step, {run['tokens_per_second'] / 1e6:.2f}M"
                      f" tokens/s, MFU {mfu}, CPU {run['cpu_ms_per_step']:.2f} ms/step, {run['step_graphs']}",
                      flush=True)
            print(f"round {index}: largest loss difference {difference:.3g}", flush=True)

    summary = {name: statistics.median(r[name]["ms_per_step"] for r in rounds) for name in ("graphs", "plain")}
    print(f"median ms/step: graphs {summary['graphs']:.2f}, plain {summary['plain']:.2f}, "
          f"speed-up {summary['plain'] / summary['graphs']:.2f}x; compile {compile_seconds:.1f} s")
    for r in rounds:
        for name in ("graphs", "plain"):
            r[name].pop("loss_curve")
    print(json.dumps({"task": args.task, "budget": args.budget, "reference": args.reference, "steps": args.steps,
                      "launched_twice_loss_difference": noise,
                      "flops_per_token": flops, "peak_tflops": peak, "compile_seconds": compile_seconds,
                      "median_ms_per_step": summary, "rounds": rounds}))


if __name__ == "__main__":
    main()
