"""Harness overhead: training throughput of `evaluator.harness.train` against a minimal hand-written loop.

Both train the same model (same initial weights) on the same pre-generated batches for the same
steps with the same optimizer; runs are interleaved (harness, minimal, harness, ...) so machine
load hits both alike. Reports medians of tokens/s and their ratio (target >= 0.97). Then, unless
`--skip-sandbox`, the seconds from submitting a sandboxed evaluation to the worker's first
training step (target <= 3 s), with the checks' share, which comes before training by design.
Prints one JSON line.

    .venv/bin/python bench/bench_harness.py --threads 1
    python bench/bench_harness.py --device cuda --budget gpu --skip-sandbox
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from evaluator.backbone import build_model  # noqa: E402
from evaluator.budgets import get_budget  # noqa: E402
from evaluator.candidate_loader import load_mixer_class  # noqa: E402
from evaluator.harness import make_optimizer, seed_everything, train  # noqa: E402
from evaluator.measure import autocast_for, synchronize  # noqa: E402
from evaluator.references import get_reference  # noqa: E402
from evaluator.tasks import IGNORE_INDEX, get_task  # noqa: E402


def minimal_loop(model: torch.nn.Module, batches: list, budget, device: torch.device) -> float:
    """The baseline: the shortest correct loop with the harness's optimizer at a fixed lr; returns seconds."""
    optimizer = make_optimizer(model, budget)
    model.train()
    synchronize(device)
    start = time.perf_counter()
    for batch in batches:
        inputs, targets = batch.inputs.to(device, non_blocking=True), batch.targets.to(device, non_blocking=True)
        with autocast_for(device):
            logits = model(inputs)
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), budget.grad_clip)
        optimizer.step()
        optimizer.zero_grad()
    synchronize(device)
    return time.perf_counter() - start


def harness_loop(model: torch.nn.Module, batches: list, budget, device: torch.device, vocab_size: int,
                 candidate: Path) -> float:
    start = time.perf_counter()
    result = train(model, batches.__getitem__, budget, device, float("inf"), vocab_size, candidate)
    if result.diverged or result.steps_done != len(batches):
        raise RuntimeError(f"harness run did not finish: {result}")
    return time.perf_counter() - start


def throughput(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    task = get_task(args.task)
    budget = dataclasses.replace(get_budget(args.task, args.budget), steps=args.steps)
    reference = get_reference(args.reference)
    mixer_class = load_mixer_class(reference.path)
    data = task.make_data(budget, 0)
    batches = [data.train_batch(step) for step in range(args.steps)]
    tokens = sum(b.tokens for b in batches)
    seed_everything(0)
    initial = build_model(lambda: mixer_class(budget.d_model, budget.n_heads), task.vocab_size(budget), budget)
    runs: dict[str, list[float]] = {"harness": [], "minimal": []}
    for repeat in range(args.repeats + 1):  # the first round warms up kernels and allocators
        for name in ("harness", "minimal"):
            model = copy.deepcopy(initial).to(device)
            seconds = (harness_loop(model, batches, budget, device, task.vocab_size(budget), reference.path)
                       if name == "harness"
                       else minimal_loop(model, batches, budget, device))
            if repeat:
                runs[name].append(tokens / seconds)
    harness, minimal = statistics.median(runs["harness"]), statistics.median(runs["minimal"])
    return {"device": str(device), "task": args.task, "budget": args.budget, "reference": args.reference,
            "steps": args.steps, "repeats": args.repeats, "threads": torch.get_num_threads(),
            "harness_tokens_per_s": round(harness), "minimal_tokens_per_s": round(minimal),
            "ratio": round(harness / minimal, 4),
            "harness_runs": [round(v) for v in runs["harness"]], "minimal_runs": [round(v) for v in runs["minimal"]]}


def submission_to_first_step(args: argparse.Namespace) -> dict:
    from evaluator.evaluate import evaluate
    delays, checks = [], []
    for _ in range(args.sandbox_runs):
        with tempfile.TemporaryDirectory() as out_dir:
            result = evaluate(args.reference, args.task, "smoke", device=args.device, out_dir=Path(out_dir),
                              threads=args.threads)
        if "submit_to_first_step" not in result.timings:
            raise RuntimeError(f"evaluation ended before training: {result.status.value}: {result.reason}")
        delays.append(result.timings["submit_to_first_step"])
        checks.append(result.timings["checks"])
    return {"submit_to_first_step_s": round(statistics.median(delays), 3),
            "of_which_checks_s": round(statistics.median(checks), 3),
            "submit_to_first_step_without_checks_s": round(statistics.median(d - c for d, c in zip(delays, checks)), 3),
            "isolation": result.isolation, "sandbox_runs": args.sandbox_runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--task", default="mqar")
    parser.add_argument("--budget", default="cpu")
    parser.add_argument("--reference", default="gated_delta_rule")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sandbox-runs", type=int, default=3)
    parser.add_argument("--skip-sandbox", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    figures = throughput(args)
    if not args.skip_sandbox:
        figures.update(submission_to_first_step(args))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
