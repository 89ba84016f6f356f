"""What a warm inductor cache would save a compiled evaluation's set-up: the evidence for a trusted cache.

Each compilation runs in a fresh process (as each evaluation's worker does), through the worker's own
`prepare_compiler` and `compile_or_fall_back`, outside the sandbox. Four compilations, in this order:

1. `--reference` from an empty cache (what every compiled evaluation pays today);
2. the same again from that cache (everything cached: the floor);
3. `--other` from an empty cache;
4. `--other` from a copy of the first cache, where only the backbone's parts (the same graphs for every
   candidate) can be found: what a cache written only by trusted evaluations would save an untrusted one.

Prints seconds per compilation (setting up the compiler, then the first compiled steps); the last line is one JSON
object. Needs CUDA, torch and numpy.

    python bench/bench_compile_cache.py --task mqar --reference softmax_attention --other short_convolution
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from evaluator.budgets import get_budget  # noqa: E402
from evaluator.candidate_loader import load_mixer_class  # noqa: E402
from evaluator.compile import CompilePlan, compile_or_fall_back, prepare_compiler  # noqa: E402
from evaluator.references import get_reference  # noqa: E402
from evaluator.tasks import get_task  # noqa: E402


def compile_once(task: str, budget_name: str, reference: str, work: Path) -> dict:
    """This process: set up the compiler with its cache under `work`, compile `reference` as the worker does."""
    started = time.perf_counter()
    device = torch.device("cuda")
    budget = get_budget(task, budget_name)
    vocab_size = get_task(task).vocab_size(budget)
    mixer_class = load_mixer_class(get_reference(reference).path)
    prepare_compiler(work, device, threads=8)
    prepared = time.perf_counter()
    compiled = compile_or_fall_back(mixer_class, lambda: mixer_class(budget.d_model, budget.n_heads),
                                    CompilePlan(True, True, "the benchmark compiles"), budget, vocab_size, device, 0)
    return {"reference": reference, "setup_s": prepared - started, "compile_s": time.perf_counter() - prepared,
            "compiled": compiled.plan.compiled, "reason": compiled.plan.reason}


def in_fresh_process(args: argparse.Namespace, reference: str, work: Path) -> dict:
    command = [sys.executable, __file__, "--task", args.task, "--budget", args.budget, "--one", reference,
               "--work", str(work)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"compiling {reference} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mqar")
    parser.add_argument("--budget", default="gpu")
    parser.add_argument("--reference", default="softmax_attention", help="compiled first, and its cache reused")
    parser.add_argument("--other", default="short_convolution", help="a second mixer, cold and with the parts cached")
    parser.add_argument("--one", help=argparse.SUPPRESS)   # internal: compile this reference in this process
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(compile_once(args.task, args.budget, args.one, args.work)))
        return
    if args.reference == args.other:
        parser.error("--other must differ from --reference: the fourth compilation measures the parts alone")
    if not torch.cuda.is_available():
        sys.exit("bench_compile_cache.py needs CUDA: on CUDA the backbone's parts are compiled, on CPU they stay eager")
    with tempfile.TemporaryDirectory() as root:
        first, other = Path(root, "first"), Path(root, "other")
        runs = {"cold": in_fresh_process(args, args.reference, first),
                "all cached": in_fresh_process(args, args.reference, first),
                "other cold": in_fresh_process(args, args.other, other)}
        parts_only = Path(root, "parts-only")
        shutil.copytree(first, parts_only)
        runs["other, parts cached"] = in_fresh_process(args, args.other, parts_only)
    for name, run in runs.items():
        print(f"{args.task}/{args.budget} {run['reference']:18s} {name:20s} set-up {run['setup_s']:5.1f} s, "
              f"first compiled steps {run['compile_s']:5.1f} s{'' if run['compiled'] else ' (' + run['reason'] + ')'}")
    saved = runs["other cold"]["compile_s"] - runs["other, parts cached"]["compile_s"]
    print(f"the backbone's parts from the cache save {args.other} {saved:.1f} s of "
          f"{runs['other cold']['compile_s']:.1f} s")
    print(json.dumps({"task": args.task, "budget": args.budget, "runs": runs, "parts_cached_saves_s": saved}))


if __name__ == "__main__":
    main()
