"""Random search over the offline design space: the bar the offline researcher's search must clear.

Evaluates the task's baseline and N uniformly sampled genomes (rendered to candidate files) at one
budget, and prints each fitness relative to the baseline measured in the same run, then one JSON
line with the mean and best.

    python bench/bench_random_genomes.py --task mqar --budget cpu --n 8 [--device cuda] [--threads 1]
    python bench/bench_random_genomes.py --render-only DIR --n 8    # render here (needs jinja2) ...
    python bench/bench_random_genomes.py --from-dir DIR --device cuda  # ... evaluate on a torch-only GPU box
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluator.evaluate import evaluate  # noqa: E402
from evaluator.fitness import fitness  # noqa: E402
from evaluator.tasks import get_task  # noqa: E402


def render(n: int, seed: int, folder: Path) -> list[Path]:
    """N genomes drawn uniformly from the design space, rendered to candidate files."""
    from agents.offline.operators import random_genome
    from agents.offline.render import candidate_name, render_candidate

    rng, folder, paths = random.Random(seed), Path(folder), []
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(n):
        genome = random_genome(rng)
        paths.append(folder / f"{index:02d}-{candidate_name(genome)}.py")
        paths[-1].write_text(render_candidate(genome))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="mqar")
    parser.add_argument("--budget", default="cpu")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--threads", type=int, help="CPU threads per evaluation (default: all cores; a discovery "
                        "run gives each of its workers an equal share)")
    parser.add_argument("--seed", type=int, default=0, help="genome sampling seed (training uses seed 0)")
    parser.add_argument("--render-only", type=Path, help="write the N rendered candidates to this folder and stop")
    parser.add_argument("--from-dir", type=Path, help="evaluate the candidates rendered earlier into this folder")
    args = parser.parse_args()
    if args.from_dir is None:
        rendered = render(args.n, args.seed, args.render_only or Path(tempfile.mkdtemp()))
        if args.render_only:
            return
    else:
        rendered = sorted(args.from_dir.glob("*.py"))
    with tempfile.TemporaryDirectory() as scratch:
        run = lambda target, name: evaluate(target, task=args.task, budget=args.budget, device=args.device,
                                            out_dir=Path(scratch) / name, threads=args.threads)
        baseline = run(get_task(args.task).baseline, "baseline")
        values = []
        for path in rendered:
            result = run(path, path.stem)
            value = fitness(args.task, result.metrics, baseline.metrics) if result.ok else None
            values.append(value)
            print(f"{path.stem:<60} {result.status.value:<8} fitness {value}", flush=True)
    scored = [v for v in values if v is not None]
    print(json.dumps({"task": args.task, "budget": args.budget, "device": args.device, "n": len(values),
                      "baseline_metrics": baseline.metrics, "fitness": values,
                      "mean_fitness": statistics.fmean(scored) if scored else None,
                      "best_fitness": max(scored, default=None), "failed": len(values) - len(scored)}))


if __name__ == "__main__":
    main()
