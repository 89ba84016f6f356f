"""Experiments per GPU-hour at the `gpu` budgets: one at a time vs packed vs packed + compiled (issue 14).

For each task, every (reference, seed) of a mode is submitted at once through the run's own executor
(sandbox.executors.LocalPool): `one` has one slot on the GPU, `packed` K slots (`cuda:NxK`, each worker
capped to 0.9/K of the GPU's memory, the cores split between slots), both eager (compile off, whatever the
budget's `compile` says), and `compiled` the packed slots with `evaluate(..., compile=--compile)`. With
--stagger the packed slots start as a run's do with `stagger_starts = true` (sandbox.stagger).
Experiments per hour = experiments / wall from submission to the last result * 3600.

Per reference: training tokens/s and MFU. MFU = training FLOPs/s over the GPU's peak dense bf16 FLOP/s
(989 TFLOP/s on an H100 or H200, else --peak-tflops); FLOPs per training token are counted outside the
sandbox on the trusted reference with torch.utils.flop_counter.FlopCounterMode over one forward and
backward of the budget's backbone at each training shape (matmuls and attention only; a causal attention
counts its whole score matrix). Per experiment: the seconds that are not training (start = the sandbox's
wall minus the worker's phases; checks, proxies, model, compile, eval, measure from the worker's timings;
orchestrator = total minus sandbox). Per budget, for `Budget.gpu_peak_memory_bytes` and
`gpu_busy_fraction`: during the one-at-a-time mode `nvidia-smi` is sampled every --sample-ms; busy =
mean `utilization.gpu` over that wall time (start-up and checks included: the idle time packing fills),
peak = the most `memory.used` above the idle GPU's (whole processes: CUDA context and checks included).
`--modes compiled --pack 1` measures the same for compiled evaluations (`Budget.gpu_*_compiled`).

Needs only torch, numpy and the stdlib. On the H200:
    python bench/bench_gpu_throughput.py --tasks mqar --pack 4 --out mqar.json
Where one call cannot hold every mode, run `--modes one --out one.json` first, then the other modes with
`--one-from one.json`: their ratios are to that earlier one-at-a-time figure (same machine, same budget).
A quick check anywhere:
    python bench/bench_gpu_throughput.py --device cpu --budget smoke --tasks mqar \
        --refs softmax_attention gated_delta_rule --pack 2
Prints a table per task, then one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import as_completed
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from evaluator.backbone import build_model  # noqa: E402
from evaluator.budgets import get_budget  # noqa: E402
from evaluator.candidate_loader import load_mixer_class  # noqa: E402
from evaluator.evaluate import evaluate  # noqa: E402
from evaluator.harness import masked_cross_entropy  # noqa: E402
from evaluator.records import EvalResult  # noqa: E402
from evaluator.references import get_reference  # noqa: E402
from evaluator.tasks import get_task  # noqa: E402
from sandbox.executors import LocalPool  # noqa: E402
from sandbox.slots import auto_sharing, threads_per_slot  # noqa: E402

DEFAULT_REFS = {"mqar": ["softmax_attention", "gated_delta_rule", "linear_attention", "delta_rule"],
                "bytelm": ["softmax_attention", "gated_delta_rule"]}
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0}  # dense, SXM
MODES = ("one", "packed", "compiled")
WORKER_PHASES = ("checks", "proxies", "data_and_model", "compile", "train", "eval", "measure")


class GpuSampler:
    """`nvidia-smi` every `interval_ms` in a thread: (utilization %, memory used MiB) of one GPU."""

    def __init__(self, index: int, interval_ms: int):
        self.samples: list[tuple[float, float]] = []
        self._process = subprocess.Popen(
            ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits",
             f"-lms={interval_ms}", f"--id={index}"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self._process.stdout:
            try:
                utilization, memory = (float(part) for part in line.split(","))
            except ValueError:  # "[N/A]" or a partial line
                continue
            self.samples.append((utilization, memory))

    def stop(self) -> dict | None:
        self._process.terminate()
        self._process.wait()
        self._reader.join()
        if len(self.samples) < 2:
            return None
        idle = self.samples[0][1]
        return {"busy_fraction": round(sum(u for u, _ in self.samples) / len(self.samples) / 100, 3),
                "peak_memory_bytes": int((max(m for _, m in self.samples) - idle) * 2**20),
                "samples": len(self.samples)}


def run_mode(mode: str, task: str, args: argparse.Namespace, refs: list[str], root: Path,
             targets: dict[str, Path]) -> dict:
    """Every (reference or candidate, seed) at once through a LocalPool of this mode's slots; wall from submit
    to last. `targets`: candidate files by name (--candidates); anything else is a reference's name."""
    gpu = args.device.startswith("cuda")
    pack = 1 if mode == "one" else args.pack
    specs = ([f"{args.device}x{pack}"] if gpu else ["cpu"] * pack)
    pool = LocalPool(specs, stagger=args.stagger)
    threads = threads_per_slot(len(os.sched_getaffinity(0)), pool.capacity)
    extra = {"compile": args.compile if mode == "compiled" else False}  # one and packed: eager, whatever the budget says
    sampler = GpuSampler(_index(args.device), args.sample_ms) if gpu and shutil.which("nvidia-smi") else None
    started = time.perf_counter()
    done_at: list[float] = []
    try:
        futures = {(ref, seed): pool.submit(partial(evaluate, targets.get(ref, ref), task, args.budget, seed=seed,
                                                    threads=threads, out_dir=root / mode / f"{ref}-{seed}", **extra))
                   for ref in refs for seed in args.seeds}
        for future in as_completed(futures.values()):  # a running tally, so a call cut short still shows the stream
            result = future.result()
            done_at.append(time.perf_counter() - started)
            print(f"{task}: {mode}: {len(done_at)} of {len(futures)} done at {done_at[-1]:.1f} s "
                  f"({result.status.value}, trained {result.timings.get('train', 0.0):.1f} s)", flush=True)
        results = {key: future.result() for key, future in futures.items()}
    finally:
        pool.shutdown()
    wall = time.perf_counter() - started
    return {"mode": mode, "slots": specs, "pack": pack, "stagger": args.stagger and gpu and pack > 1, "threads": threads, "wall_s": wall,
            "experiments_per_hour": len(results) / wall * 3600, "results": results, "done_at_s": done_at,
            "after_first": after_first(done_at, pack), "gpu": sampler.stop() if sampler else None}


def after_first(done_at: list[float], slots: int) -> float | None:
    """Experiments per hour after the first `slots` results: the stream's rate once every slot is busy, without
    its start (the first evaluations' set-ups, which a run pays once). None: too few experiments for it."""
    if len(done_at) <= slots or done_at[-1] <= done_at[slots - 1]:
        return None
    return (len(done_at) - slots) / (done_at[-1] - done_at[slots - 1]) * 3600


def flops_per_token(task_name: str, budget_name: str, reference: str, device: str) -> float:
    """Training FLOPs per token: one forward and backward per training length, on the trusted reference."""
    task, budget = get_task(task_name), get_budget(task_name, budget_name)
    data = task.make_data(budget, 0)
    mixer_class = load_mixer_class(get_reference(reference).path)
    model = build_model(lambda: mixer_class(budget.d_model, budget.n_heads), task.vocab_size(budget), budget)
    model = model.to(device)
    flops = tokens = 0
    for step in range(len(budget.seq_lens)):
        batch = data.train_batch(step).to(device)
        with FlopCounterMode(display=False) as counter:
            masked_cross_entropy(model(batch.inputs), batch.targets).backward()
        flops += counter.get_total_flops()
        tokens += batch.tokens
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return flops / tokens


def not_training(result: EvalResult) -> dict[str, float]:
    """The seconds of an experiment that are not training, by part."""
    timings = result.timings
    phases = {name: timings[name] for name in WORKER_PHASES if name in timings}
    parts = {"start": timings.get("sandbox", 0.0) - sum(phases.values()),
             **{name: value for name, value in phases.items() if name != "train"},
             "orchestrator": timings.get("total", 0.0) - timings.get("sandbox", 0.0)}
    parts["all"] = timings.get("total", 0.0) - timings.get("train", 0.0)
    return {name: round(value, 2) for name, value in parts.items()}


def summarise(task: str, args: argparse.Namespace, runs: list[dict], flops: dict[str, float],
              peak: float | None) -> dict:
    """The task's figures, JSON-ready; prints its table on the way."""
    budget = get_budget(task, args.budget)
    base, alone = one_at_a_time(task, runs, args)
    print(f"\n{task}/{args.budget} on {args.device} (pack {args.pack}; peak "
          f"{f'{peak:g} TFLOP/s' if peak else 'unknown: MFU left out'})")
    print(f"{'mode':9} {'exp/h':>8} {'x one':>6} {'wall s':>7}  {'reference(seed)':21} {'status':9} "
          f"{'tokens/s':>10} {'MFU':>6}"
          f"  not training s (start/checks/compile/eval+measure); status! differs from one at a time")
    figures = {"task": task, "budget": args.budget, "modes": {}, "flops_per_token": flops,
               "one_from": str(args.one_from) if args.one_from and runs[0]["mode"] != "one" else None}
    for run in runs:
        ratio = run["experiments_per_hour"] / base if base else None
        rows = []
        for (ref, seed), result in run["results"].items():
            tps = result.train_tokens_per_second
            mfu = flops[ref] * tps / (peak * 1e12) if peak and tps and ref in flops else None
            overhead = not_training(result)
            rows.append({"reference": ref, "seed": seed, "status": result.status.value, "reason": result.reason[:200],
                         "tokens_per_s": round(tps) if tps else None, "mfu": round(mfu, 4) if mfu else None,
                         "train_s": round(result.timings.get("train", 0.0), 2), "not_training_s": overhead,
                         "peak_memory_bytes": result.peak_memory_bytes,
                         "gpu_memory_fraction": result.gpu_memory_fraction, "metrics": _headline(result),
                         "compilation": result.compilation, "seccomp": (result.guards or {}).get("seccomp"),
                         "status_differs": (ref, seed) in alone and alone[(ref, seed)] != result.status.value})
        for index, row in enumerate(rows):
            lead = (f"{run['mode']:9} {run['experiments_per_hour']:8.1f} {f'{ratio:.2f}' if ratio else '-':>6} "
                    f"{run['wall_s']:7.1f}" if index == 0 else " " * 33)
            part = row["not_training_s"]
            tokens = f"{row['tokens_per_s']:,}" if row["tokens_per_s"] else "-"
            mfu = f"{row['mfu']:.1%}" if row["mfu"] else "-"
            status = row["status"] + ("!" if row["status_differs"] else "")
            print(f"{lead}  {row['reference'][:18]:18}({row['seed']}) {status:9} "
                  f"{tokens:>10} {mfu:>6}  {part['all']:6.1f} "
                  f"({part['start']:.1f}/{part.get('checks', 0):.1f}/{part.get('compile', 0):.1f}/"
                  f"{part.get('eval', 0) + part.get('measure', 0):.1f})")
            if run["mode"] == "compiled" and not row["compilation"].get("compiled"):
                print(f"{'':33}  eager: {row['compilation'].get('reason', 'no compilation record')[:400]}")
        if alone and set(run["results"]) != set(alone):
            print(f"{'':33}  note: one at a time ran other experiments ({len(alone)}); the ratio compares rates")
        if run["after_first"]:
            print(f"{'':33}  after the first {run['pack']} results: "
                  f"{run['after_first']:.1f} experiments/h (the stream without its start)")
        if run["gpu"]:
            print(f"{'':33}  GPU busy {run['gpu']['busy_fraction']:.0%} of the wall time, at most "
                  f"{run['gpu']['peak_memory_bytes'] / 2**30:.1f} GiB in use (nvidia-smi)")
        figures["modes"][run["mode"]] = {"experiments_per_hour": round(run["experiments_per_hour"], 2), "gpu": run["gpu"],
                                         "ratio_to_one": round(ratio, 3) if ratio else None,
                                         "wall_s": round(run["wall_s"], 1), "slots": run["slots"],
                                         "done_at_s": [round(t, 1) for t in run["done_at_s"]],
                                         "after_first": round(run["after_first"], 2) if run["after_first"] else None,
                                         "stagger": run["stagger"],
                                         "threads": run["threads"], "experiments": rows}
    figures["measured"] = _measured(runs, budget, args.device) if args.device.startswith("cuda") else {}
    return figures


def one_at_a_time(task: str, runs: list[dict], args: argparse.Namespace) -> tuple[float | None, dict]:
    """(experiments per hour one at a time, each experiment's status then): this run's `one` mode, else the one
    in --one-from's figures (an earlier call on the same machine), else (None, {})."""
    if runs and runs[0]["mode"] == "one":
        return runs[0]["experiments_per_hour"], {key: r.status.value for key, r in runs[0]["results"].items()}
    one = earlier_one(args.one_from, task, args.budget) if args.one_from else None
    if one is None:
        return None, {}
    return one["experiments_per_hour"], {(row["reference"], row["seed"]): row["status"] for row in one["experiments"]}


def earlier_one(path: Path, task: str, budget: str) -> dict | None:
    """The `one` mode of `task` at `budget` in a JSON written by --out, or None."""
    figures = json.loads(path.read_text())
    return next((entry["modes"].get("one") for entry in figures.get("tasks", [])
                 if entry.get("task") == task and entry.get("budget") == budget), None)


def _measured(runs: list[dict], budget, device: str) -> dict:
    """Peak GPU memory and busy fraction of one evaluation at a time, eager (`one`) and compiled (`compiled` with
    --pack 1), for the budget's fields, and the K `auto` would pick from each."""
    measured = {}
    for mode, suffix in (("one", ""), ("compiled", "_compiled")):
        alone = next((run for run in runs if run["mode"] == mode and run["pack"] == 1), None)
        if alone is not None:
            measured.update({f"{key}{suffix}": value for key, value in _alone(alone, budget, device).items()})
    return measured


def _alone(run: dict, budget, device: str) -> dict:
    torch_peak = max((r.peak_memory_bytes or 0 for r in run["results"].values()), default=0) or None
    gpu = run["gpu"] or {}
    peak = gpu.get("peak_memory_bytes") or torch_peak
    measured = {"gpu_peak_memory_bytes": peak, "torch_peak_memory_bytes": torch_peak,
                "gpu_busy_fraction": gpu.get("busy_fraction"), "nvidia_smi_samples": gpu.get("samples", 0)}
    if peak:
        total = torch.cuda.get_device_properties(_index(device)).total_memory
        cores = len(os.sched_getaffinity(0)) // max(1, torch.cuda.device_count())
        measured["auto"] = auto_sharing(total, peak, gpu.get("busy_fraction"), cores).reason
    print(f"measured ({budget.task}/{budget.name}, one at a time, {run['mode']}): gpu_peak_memory_bytes={peak} "
          f"(torch's own peak {torch_peak}), gpu_busy_fraction={measured['gpu_busy_fraction']}"
          + (f"; --devices auto would choose {measured['auto']}" if "auto" in measured else ""))
    return measured


def _headline(result: EvalResult) -> dict:
    keys = ("accuracy", "val_bpb", "val_loss")
    final_loss = result.loss_curve[-1][1] if result.loss_curve else None
    return {**{key: result.metrics[key] for key in keys if key in result.metrics}, "final_train_loss": final_loss}


def _index(device: str) -> int:
    return int(device.partition(":")[2] or 0)


def peak_tflops(args: argparse.Namespace) -> float | None:
    if args.peak_tflops:
        return args.peak_tflops
    if not args.device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name(_index(args.device))
    return next((value for key, value in PEAK_BF16_TFLOPS.items() if key in name), None)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["mqar", "bytelm"], choices=sorted(DEFAULT_REFS))
    parser.add_argument("--refs", nargs="*", help="references for every task (default: a fixed set per task)")
    parser.add_argument("--candidates", type=Path, help="a folder of candidate files (e.g. design-space genomes "
                        "from bench_random_genomes.py --render-only) evaluated with the references; no MFU for them")
    parser.add_argument("--budget", default="gpu")
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    parser.add_argument("--pack", type=int, default=4, help="evaluations at once in the packed modes (K)")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--stagger", action="store_true",
                        help="packed slots start staggered (a run's `stagger_starts = true`, sandbox.stagger)")
    parser.add_argument("--compile", default="true", choices=["true", "auto"],
                        help="the compile setting of the `compiled` mode")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="seeds per reference")
    parser.add_argument("--peak-tflops", type=float, help="the device's peak dense bf16 TFLOP/s (MFU)")
    parser.add_argument("--sample-ms", type=int, default=200, help="nvidia-smi sampling interval")
    parser.add_argument("--out", type=Path, help="also write the JSON figures here")
    parser.add_argument("--one-from", type=Path, help="the JSON an earlier --out wrote on this machine: its `one` "
                        "mode is the base of the ratios when this call runs only other modes (where one call cannot "
                        "hold every mode, e.g. bytelm `gpu` under a 10-minute limit)")
    args = parser.parse_args()
    if args.one_from:
        try:
            missing = [task for task in args.tasks if earlier_one(args.one_from, task, args.budget) is None]
        except (OSError, ValueError) as error:
            parser.error(f"--one-from {args.one_from}: cannot read it as an --out JSON ({error})")
        if missing:
            parser.error(f"--one-from {args.one_from} has no `one` mode for {', '.join(missing)} at --budget "
                         f"{args.budget}; run that mode first with --out")
    args.device = "cuda:0" if args.device == "cuda" else args.device
    if args.device != "cpu" and not (args.device.startswith("cuda:") and args.device[5:].isdigit()):
        parser.error(f"--device {args.device}: use cpu, cuda or cuda:N")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: this machine has no CUDA device; use --device cpu --budget smoke")
    if not 1 <= args.pack <= 8:
        parser.error("--pack K: 1 to 8 evaluations at once")
    args.compile = True if args.compile == "true" else "auto"
    return args


def main() -> None:
    args = parse_args()
    peak = peak_tflops(args)
    modes = [mode for mode in MODES if mode in args.modes]
    figures = {"device": args.device, "device_name": torch.cuda.get_device_name(_index(args.device))
               if args.device.startswith("cuda") else "cpu", "peak_tflops": peak, "pack": args.pack,
               "cores": len(os.sched_getaffinity(0)), "tasks": []}
    with tempfile.TemporaryDirectory(prefix="bench-gpu-throughput-") as scratch:
        for task in args.tasks:
            get_budget(task, args.budget)  # an unknown budget fails here, before anything runs
            targets = {path.stem: path for path in sorted(args.candidates.glob("*.py"))} if args.candidates else {}
            refs = (DEFAULT_REFS[task] if args.refs is None else args.refs) + list(targets)
            runs = []
            for mode in modes:
                print(f"{task}: {mode} ({len(refs) * len(args.seeds)} experiments) ...", flush=True)
                runs.append(run_mode(mode, task, args, refs, Path(scratch) / task, targets))
                print(f"{task}: {mode}: {runs[-1]['experiments_per_hour']:.1f} experiments/h over "
                      f"{runs[-1]['wall_s']:.1f} s", flush=True)  # seen even if a later mode runs out of time
            flops = {ref: flops_per_token(task, args.budget, ref, args.device) for ref in refs if ref not in targets}
            figures["tasks"].append(summarise(task, args, runs, flops, peak))
    line = json.dumps(figures, default=str)
    if args.out:
        args.out.write_text(line + "\n")
    print(line)


if __name__ == "__main__":
    main()
