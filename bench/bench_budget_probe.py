"""Tune a budget preset: train trusted references in-process under variants of a preset, several seeds each.

Sandboxed evaluations look a budget up by name, so a candidate preset cannot be tried through them
before it exists. This probe trains the project's own references (trusted code, never a candidate)
with the real harness and task metrics under `--set field=value` variants of a registered preset,
one process per (variant, reference, seed), `--jobs` at once, and prints the headline metric per
variant and reference with its seeds, each variant's ranking and Kendall's tau between seeds.

    python bench/bench_budget_probe.py --task bytelm --budget cpu-suite --seeds 0 1 \\
        --variant base --variant "steps=1600" --variant "steps=1600 lr=0.004" --jobs 16 [--device cuda]

Variant values are Python literals (`seq_lens=(512,)`, `lr=3e-3`); `task.` sets a task-config field
(`task.corpus_bytes=8388608`). Ends with one JSON line.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluator.budgets import Budget, get_budget  # noqa: E402
from evaluator.references import list_references  # noqa: E402
from evaluator.stats import kendall_tau  # noqa: E402
from evaluator.suite import HEADLINES  # noqa: E402


def variant_budget(base: Budget, assignments: str) -> Budget:
    """The preset with `field=value` assignments applied; `task.field` reaches the task config."""
    fields, task_fields = {}, {}
    for item in assignments.split():
        if item == "base":
            continue
        name, _, value = item.partition("=")
        target = task_fields if name.startswith("task.") else fields
        target[name.removeprefix("task.")] = ast.literal_eval(value)
    return dataclasses.replace(base, **fields, task_config=dataclasses.replace(base.task_config, **task_fields))


def train_one(job: tuple) -> dict:
    """Train one reference under one variant and seed; the headline metric and seconds."""
    task_name, budget, reference, seed, device_name, threads = job
    import torch

    from evaluator.backbone import build_model
    from evaluator.candidate_loader import load_mixer_class
    from evaluator.harness import held_out_metrics, seed_everything, train
    from evaluator.tasks import get_task

    torch.set_num_threads(threads)
    device = torch.device(device_name)
    task = get_task(task_name)
    path = next(r.path for r in list_references("mixer") if r.name == reference)
    mixer_class = load_mixer_class(path)
    data = task.make_data(budget, seed, None)
    seed_everything(seed)
    model = build_model(lambda: mixer_class(budget.d_model, budget.n_heads), task.vocab_size(budget), budget).to(device)
    started = time.perf_counter()
    trained = train(model, data.train_batch, budget, device, float("inf"), task.vocab_size(budget), path)
    metrics = held_out_metrics(model, task, data, device, path)
    return {"reference": reference, "seed": seed, "metric": metrics.get(HEADLINES[task_name][0]),
            "seconds": round(time.perf_counter() - started, 1), "diverged": trained.diverged,
            "by_point": metrics.get("accuracy_by_point")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True)
    parser.add_argument("--budget", required=True)
    parser.add_argument("--variant", action="append", default=[], help="space-separated field=value (or 'base')")
    parser.add_argument("--refs", nargs="*", default=None, help="references (default: all mixers)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=4)
    args = parser.parse_args()
    base = get_budget(args.task, args.budget)
    known = [r.name for r in list_references("mixer")]
    refs = args.refs or known
    if set(refs) - set(known):
        parser.error(f"unknown reference(s) {sorted(set(refs) - set(known))}; known: {', '.join(known)}")
    variants = args.variant or ["base"]
    jobs = [(args.task, variant_budget(base, v), ref, seed, args.device, args.threads)
            for v in variants for ref in refs for seed in args.seeds]
    lower_is_better = HEADLINES[args.task][1] < 0
    context = multiprocessing.get_context("spawn")
    outcomes = []
    with context.Pool(args.jobs) as pool:
        for outcome in pool.imap(train_one, jobs, chunksize=1):  # shown as they come
            outcomes.append(outcome)
            print(f"{outcome['reference']:<24} seed {outcome['seed']} {outcome['metric']}  {outcome['seconds']} s  "
                  f"[{variants[(len(outcomes) - 1) // (len(refs) * len(args.seeds))]}]", flush=True)
    figures = {}
    for index, variant in enumerate(variants):
        rows = outcomes[index * len(refs) * len(args.seeds):(index + 1) * len(refs) * len(args.seeds)]
        table = {ref: {r["seed"]: r["metric"] for r in rows if r["reference"] == ref} for ref in refs}
        seconds = {ref: max(r["seconds"] for r in rows if r["reference"] == ref) for ref in refs}
        means = {ref: statistics.mean(v for v in table[ref].values() if v is not None) for ref in refs}
        order = sorted(refs, key=lambda ref: means[ref], reverse=not lower_is_better)
        taus = [kendall_tau([table[ref][a] for ref in refs], [table[ref][b] for ref in refs])
                for i, a in enumerate(args.seeds) for b in args.seeds[i + 1:]]
        shown = ", ".join("n/a" if t is None else f"{t:.2f}" for t in taus) or "n/a"
        print(f"\n== {variant}  (Kendall tau between seeds: {shown})")
        for ref in order:
            values = " ".join(f"{table[ref][s]:.4f}" for s in args.seeds)
            print(f"  {ref:<24} mean {means[ref]:.4f}  seeds {values}  ({seconds[ref]} s)")
        figures[variant] = {"means": means, "per_seed": table, "taus": taus, "order": order, "seconds": seconds,
                            "by_point": {r["reference"]: r["by_point"] for r in rows if r["seed"] == args.seeds[0]}}
    print(json.dumps({"task": args.task, "budget": args.budget, "device": args.device, "variants": figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
