"""The yardstick's evidence (issue 12): every reference x seeds x tasks on one budget, judged as a run would.

    python bench/bench_yardstick.py --budget cpu-suite --seeds 0 1 2 --jobs 24 [--device cuda]
        [--tasks mqar bytelm] [--threads 1] [--compare gpu.json] [--archive runs/NAME] [--out cpu.json]

Prints per reference and task the headline metric per seed, the suite fitness (tasks normalised
between the baseline, 0, and the ceiling, 1, of the same seed; efficiency against the baseline)
with its 95% interval, whether the best reference beats the baseline by its interval, Kendall's
tau between every pair of seeds (goal >= 0.8), how far the best reference is from the metric's
maximum, and the rank correlation of each zero-cost proxy with the headline metric.
`--compare FILE` (an --out of another budget, e.g. `gpu`) adds the rank correlation between the
two rungs; `--archive RUN` adds each proxy's rank correlation with trained fitness over a run.
`--from FILE` (an earlier --out) evaluates nothing: it summarises that file's results again, e.g. to
compare two rungs measured in different calls:

    python bench/bench_yardstick.py --from cpu.json --compare gpu.json

Ends with one JSON line of figures (also written to --out).
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluator.evaluate import evaluate  # noqa: E402
from evaluator.references import list_references  # noqa: E402
from evaluator.stats import beats, interval, kendall_tau, spearman_rho  # noqa: E402
from evaluator.suite import HEADLINES, SuiteWeights, headline, suite_score  # noqa: E402
from evaluator.tasks import get_task  # noqa: E402

METRIC_MAX = {"accuracy": 1.0, "val_bpb": 0.0}
SAVED_KEYS = ("budget", "device", "tasks", "seeds", "grid")  # what --from reads of an --out file


def _keep(result) -> dict:
    return {"status": result.status.value, "reason": result.reason[:300], "metrics": result.metrics,
            "train_tokens_per_second": result.train_tokens_per_second,
            "inference_latency_ms": result.inference_latency_ms, "parameters": result.parameters,
            "seconds": round(result.timings.get("total", 0.0), 1)}


def run_grid(args: argparse.Namespace) -> dict:
    """task -> reference -> seed -> kept result, every evaluation in its own sandbox, `--jobs` at once."""
    names = [r.name for r in list_references("mixer") if not args.only or r.name in args.only]
    grid = list(itertools.product(args.tasks, names, args.seeds))
    found: dict = {task: {name: {} for name in names} for task in args.tasks}
    with tempfile.TemporaryDirectory() as scratch, ThreadPoolExecutor(max(1, args.jobs)) as pool:
        def one(key):
            task, name, seed = key
            return key, _keep(evaluate(name, task=task, budget=args.budget, device=args.device, seed=seed,
                                       out_dir=Path(scratch) / f"{task}-{name}-{seed}", threads=args.threads))
        for (task, name, seed), kept in pool.map(one, grid):
            found[task][name][str(seed)] = kept
            value = kept["metrics"].get(HEADLINES[task][0])
            print(f"{task:<7} {name:<24} seed {seed} {kept['status']:<8} {HEADLINES[task][0]} "
                  f"{value if value is None else round(value, 4)}  {kept['seconds']} s", flush=True)
    return found


def summarise(grid: dict, tasks: list[str], seeds: list[str], efficiency_weight: float) -> dict:
    baseline = {t: get_task(t).baseline for t in tasks}
    ceiling = {t: get_task(t).ceiling for t in tasks}
    names = sorted(next(iter(grid.values())))
    ok = lambda t, n, s: grid[t][n].get(s, {}).get("status") == "ok"  # noqa: E731
    weights = SuiteWeights({t: 1.0 for t in tasks}, efficiency=efficiency_weight)
    per_task, suite, taus, suite_by_seed = {}, {}, {}, {}
    for task in tasks:
        per_task[task] = {n: {s: headline(task, grid[task][n][s]["metrics"]) for s in seeds if ok(task, n, s)}
                          for n in names}
    for name in names:
        values = []
        for s in seeds:
            if all(ok(t, n, s) for t in tasks for n in (name, baseline[t], ceiling[t])):
                score = suite_score({t: grid[t][name][s] for t in tasks}, {t: grid[t][baseline[t]][s] for t in tasks},
                                    {t: grid[t][ceiling[t]][s] for t in tasks}, weights)
                values.append(score.value)
                suite_by_seed.setdefault(name, {})[s] = score.value
        suite[name] = interval(values) if values else None
    for label, table in [*((t, per_task[t]) for t in tasks), ("suite", suite_by_seed)]:
        pairs = {}
        for a, b in itertools.combinations(seeds, 2):
            common = [n for n in names if a in table.get(n, {}) and b in table.get(n, {})]
            pairs[f"{a}-{b}"] = kendall_tau([table[n][a] for n in common], [table[n][b] for n in common])
        taus[label] = pairs
    best = {}
    for task in tasks:
        key, sign = HEADLINES[task]
        means = seed_means(grid[task], task)
        top = max(means, key=lambda n: sign * means[n]) if means else None
        best[task] = {"reference": top, "mean": means.get(top),
                      "distance_from_max": abs(METRIC_MAX[key] - means[top]) if top else None}
    scored = {n: i for n, i in suite.items() if i is not None}
    top_suite = max(scored, key=lambda n: scored[n].mean) if scored else None
    verdict = beats(scored[top_suite], scored[baseline[tasks[0]]]) if top_suite and baseline[tasks[0]] in scored \
        else None
    return {"per_task": per_task, "suite": {n: (vars(i) | {"low": i.low, "high": i.high}) if i else None
                                            for n, i in suite.items()},
            "kendall_tau_between_seeds": taus, "best": best,
            "best_suite": {"reference": top_suite, "beats_baseline": verdict.beats if verdict else None,
                           "why": verdict.reason if verdict else "no suite score"},
            "proxies": proxy_correlations(grid, tasks, names, seeds)}


def proxy_correlations(grid: dict, tasks: list[str], names: list[str], seeds: list[str]) -> dict:
    """Per task and proxy, Spearman's rho and Kendall's tau of the proxy against the trained headline
    (signed so that positive means "a higher proxy, a better model")."""
    found: dict = {}
    for task in tasks:
        sign = HEADLINES[task][1]
        rows = [grid[task][n][s] for n in names for s in seeds if grid[task][n].get(s, {}).get("status") == "ok"]
        proxies = sorted({k for r in rows for k in (r["metrics"].get("proxies") or {})})
        for proxy in proxies:
            pairs = [(r["metrics"]["proxies"][proxy], sign * headline(task, r["metrics"])) for r in rows
                     if isinstance(r["metrics"]["proxies"].get(proxy), (int, float))]
            xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
            found[f"{task}:{proxy}"] = {"n": len(pairs), "spearman": spearman_rho(xs, ys), "kendall": kendall_tau(xs, ys)}
    return found


def rung_correlation(mine: dict, other: dict) -> dict:
    """Per task, Kendall's tau between the seed-mean headlines of references on both budgets (from each file's
    grid: every `ok` evaluation)."""
    found = {}
    for task in set(mine["grid"]) & set(other["grid"]):
        a, b = seed_means(mine["grid"][task], task), seed_means(other["grid"][task], task)
        common = [n for n in a if n in b]
        found[task] = {"references": len(common), "kendall": kendall_tau([a[n] for n in common],
                                                                         [b[n] for n in common])}
    return found


def seed_means(results: dict, task: str) -> dict[str, float]:
    """reference -> the mean headline over its `ok` seeds, for the references with one."""
    means = {}
    for name, by_seed in results.items():
        values = [headline(task, r["metrics"]) for r in by_seed.values() if r.get("status") == "ok"]
        if values:
            means[name] = sum(values) / len(values)
    return means


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="cpu-suite")
    parser.add_argument("--tasks", nargs="+", default=["mqar", "bytelm"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="threads per evaluation")
    parser.add_argument("--jobs", type=int, default=1, help="evaluations at once")
    parser.add_argument("--only", nargs="*", help="only these references (keep the baseline and the ceiling)")
    parser.add_argument("--efficiency-weight", type=float, default=0.1)
    parser.add_argument("--compare", type=Path, help="an --out file of another rung: rank correlation between rungs")
    parser.add_argument("--archive", type=Path, help="a run directory: proxy correlations with trained fitness")
    parser.add_argument("--from", dest="saved", type=Path,
                        help="an --out file: summarise its results instead of evaluating (budget, tasks, seeds from it)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.saved:
        saved = json.loads(args.saved.read_text())
        missing = [key for key in SAVED_KEYS if key not in saved]
        if missing:
            parser.error(f"{args.saved} lacks {', '.join(missing)}: give a file this script wrote with --out")
        figures = {key: saved[key] for key in SAVED_KEYS}
    else:
        figures = {"budget": args.budget, "device": args.device, "tasks": args.tasks,
                   "seeds": [str(s) for s in args.seeds], "grid": run_grid(args)}
    grid, seeds = figures["grid"], figures["seeds"]
    figures["summary"] = summarise(grid, figures["tasks"], seeds, args.efficiency_weight)
    if args.compare:
        figures["rungs"] = rung_correlation(figures, json.loads(args.compare.read_text()))
    if args.archive:
        from agents.yardstick import archive_proxy_correlations
        from knowledge.archive import Archive
        with Archive.open(args.archive, readonly=True) as archive:
            figures["archive_proxies"] = archive_proxy_correlations(archive.experiments())
    summary = {k: v for k, v in figures.items() if k != "grid"}
    print(json.dumps(summary, default=str))
    if args.out:
        args.out.write_text(json.dumps(figures, default=str))


if __name__ == "__main__":
    main()
