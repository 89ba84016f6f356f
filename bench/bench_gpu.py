"""GPU throughput at the `gpu` budget: training tokens/s and model FLOPs utilisation per reference.

For softmax attention and two linear-time references, trains the backbone with the harness (bf16
autocast) for `--warmup` steps, then times `--steps` more. MFU follows PaLM (Chowdhery et al.
2022, appendix B): model FLOPs per token = 6 N + 12 L d T for attention (N parameters, L layers,
width d, sequence length T; the attention term counts the full score matrix even when causal),
6 N for the linear-time mixers, divided by the device's peak dense bf16 FLOP/s (989 TFLOP/s for
an H100 SXM; pass `--peak-tflops` for another device). Prints one JSON line.

    python bench/bench_gpu.py --task mqar
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from evaluator.backbone import build_model, count_parameters  # noqa: E402
from evaluator.budgets import get_budget  # noqa: E402
from evaluator.candidate_loader import load_mixer_class  # noqa: E402
from evaluator.harness import seed_everything, train  # noqa: E402
from evaluator.measure import peak_memory_bytes, reset_peak_memory  # noqa: E402
from evaluator.references import get_reference  # noqa: E402
from evaluator.tasks import get_task  # noqa: E402

H100_SXM_BF16_DENSE_TFLOPS = 989.0


def model_flops_per_token(parameters: int, budget, seq_len: float, quadratic: bool) -> float:
    attention = 12 * budget.n_layers * budget.d_model * seq_len if quadratic else 0.0
    return 6 * parameters + attention


def measure(name: str, args: argparse.Namespace, device: torch.device) -> dict:
    task = get_task(args.task)
    budget = get_budget(args.task, "gpu")
    reference = get_reference(name)
    mixer_class = load_mixer_class(reference.path)
    data = task.make_data(budget, 0)
    seed_everything(0)
    model = build_model(lambda: mixer_class(budget.d_model, budget.n_heads), task.vocab_size(budget), budget).to(device)
    vocab = task.vocab_size(budget)
    warm = dataclasses.replace(budget, steps=args.warmup, log_every=args.warmup)
    train(model, data.train_batch, warm, device, float("inf"), vocab, reference.path)
    timed = dataclasses.replace(budget, steps=args.steps, log_every=args.steps)
    reset_peak_memory(device)
    start = time.perf_counter()
    result = train(model, lambda step: data.train_batch(args.warmup + step), timed, device, float("inf"), vocab,
                   reference.path)
    seconds = time.perf_counter() - start
    tokens = sum(data.train_batch(args.warmup + step).tokens for step in range(args.steps))
    tokens_per_second = tokens / seconds
    mean_len = sum(budget.seq_lens) / len(budget.seq_lens)
    parameters = count_parameters(model)
    flops = model_flops_per_token(parameters, budget, mean_len, reference.quadratic) * tokens_per_second
    return {"tokens_per_s": round(tokens_per_second), "harness_tokens_per_s": round(result.tokens_per_second),
            "parameters": parameters, "mfu": round(flops / (args.peak_tflops * 1e12), 4),
            "model_tflops": round(flops / 1e12, 2), "final_loss": round(result.loss_curve[-1][1], 4),
            "peak_memory_gib": round(peak_memory_bytes(device) / 2**30, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mqar")
    parser.add_argument("--references", nargs="+", default=["softmax_attention", "gated_delta_rule", "retention"])
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--peak-tflops", type=float, default=H100_SXM_BF16_DENSE_TFLOPS)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench_gpu needs a CUDA device")
    device = torch.device("cuda")
    budget = get_budget(args.task, "gpu")
    figures = {"device": torch.cuda.get_device_name(device), "task": args.task, "budget": "gpu",
               "seq_lens": list(budget.seq_lens), "batch_size": budget.batch_size, "peak_tflops": args.peak_tflops,
               "torch": torch.__version__}
    figures["references"] = {name: measure(name, args, device) for name in args.references}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
