"""Knowledge at scale: an archive of N synthetic experiments (default 100,000).

Measures what the loop pays per proposal on a long run: archive inserts, the novelty query
(motivation vectors given directly, random unit 384-d, to measure the store and not the
model), parent sampling (UCT and quality-diversity over light records), reopening a run, and
hashing a candidate file. Prints one JSON line of figures.

Targets: novelty p50 <= 20 ms, sampling <= 50 ms, reopen <= 2 s, hash <= 1 ms.

    .venv/bin/python bench/bench_knowledge.py            # 100k: a few minutes on 2 cores
    .venv/bin/python bench/bench_knowledge.py --n 10000  # quick look
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from knowledge.archive import Archive  # noqa: E402
from knowledge.codehash import code_hash, source_hashes  # noqa: E402
from knowledge.embeddings import LocalMiniLM  # noqa: E402
from knowledge.novelty import MotivationNovelty  # noqa: E402
from knowledge.records import Experiment, Fitness, Stage  # noqa: E402
from knowledge.selection import sample_parent_qd, sample_parent_uct, sample_references  # noqa: E402
from knowledge.vectors import VectorStore  # noqa: E402

DIM = 384
WORDS = ("decay gate delta rule state recall chunk scan kernel feature map convolution head norm "
         "softmax linear retention selective memory overwrite forget key value query rotary").split()
STATUSES = ["ok"] * 8 + ["invalid", "leaky", "too_slow", "crashed"]
REOPEN = """
import sys, time, json
import numpy as np
sys.path.insert(0, sys.argv[2])
start = time.perf_counter()
from knowledge.archive import Archive
from knowledge.embeddings import LocalMiniLM
from knowledge.vectors import VectorStore
imported = time.perf_counter()
archive = Archive.open(sys.argv[1])
store = VectorStore(sys.argv[1] + "/chroma", LocalMiniLM())
vector = np.random.default_rng(1).standard_normal(384).astype(np.float32)
store.nearest_motivations(vector, k=5)
archive.briefs()[:1]
print(json.dumps({"import_s": imported - start, "reopen_s": time.perf_counter() - imported}))
"""


def synthetic(n: int, seed: int) -> tuple[list[Experiment], np.ndarray]:
    rng = np.random.default_rng(seed)
    experiments = []
    for i in range(n):
        status = STATUSES[int(rng.integers(len(STATUSES)))]
        params = int(10 ** rng.uniform(4, 7))
        words = " ".join(WORDS[j] for j in rng.integers(len(WORDS), size=24))
        experiments.append(Experiment(
            id=f"e{i + 1:06d}", run="bench", name=f"cand-{i}", proposer="reference" if i < 8 else "offline",
            motivation=f"Motivation {i}: {words}", code=f"# candidate {i}\n" + "x = torch.exp(y) * 0.5\n" * 24,
            code_hash=f"{rng.integers(1 << 62):016x}", structure_hash=f"{rng.integers(1 << 62):016x}",
            parent_id=None if i < 8 else f"e{int(rng.integers(max(1, i - 2000), i)) + 1:06d}",
            stage=Stage.ANALYZED if status == "ok" else Stage.FAILED, status=status,
            fitness=Fitness(value=float(rng.normal(0, 0.1))) if status == "ok" else None,
            metrics={"parameters": params, "inference_latency_ms": {"1024": float(rng.uniform(1, 30))},
                     "checks": [{"name": "complexity", "details": {"exponent": float(rng.uniform(0.9, 2.1))}}]},
        ))
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    return experiments, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def percentile_ms(samples: list[float], q: float) -> float:
    return round(float(np.percentile(samples, q)) * 1e3, 2)


def timed(fn, repeat: int) -> list[float]:
    samples = []
    for i in range(repeat):
        start = time.perf_counter()
        fn(i)
        samples.append(time.perf_counter() - start)
    return samples


def hash_figures() -> dict[str, float]:
    """Per candidate file, over the shipped reference mixers."""
    files = [p for p in sorted((REPO / "evaluator" / "references" / "mixer").glob("*.py")) if p.name != "__init__.py"]
    sources = [p.read_text() for p in files]
    code = min(timed(lambda _: [code_hash(s) for s in sources], 20)) / len(sources)
    both = min(timed(lambda _: [source_hashes(s) for s in sources], 20)) / len(sources)
    return {"hash_files": len(sources), "mean_lines": round(sum(s.count("\n") for s in sources) / len(sources)),
            "code_hash_ms": round(code * 1e3, 3), "code_and_structure_hash_ms": round(both * 1e3, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="synthetic experiments (default 100000)")
    parser.add_argument("--queries", type=int, default=200, help="novelty queries to time")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    # How fast this machine runs Python, to compare figures across machines (~0.7 ms on a recent laptop).
    figures: dict[str, object] = {"n": args.n, "python_sum_range_1e5_ms": round(min(
        timed(lambda _: sum(range(100_000)), 20)) * 1e3, 2)}
    experiments, vectors = synthetic(args.n, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        with Archive.open(run_dir) as archive:
            single = experiments[: min(2000, args.n // 10)]
            start = time.perf_counter()
            for exp in single:
                archive.add_experiment(exp)
            figures["insert_rows_per_s_one_per_transaction"] = round(len(single) / (time.perf_counter() - start))
            rest = experiments[len(single):]
            start = time.perf_counter()
            for i in range(0, len(rest), 1000):
                archive.add_experiments(rest[i:i + 1000])
            figures["insert_rows_per_s_batched"] = round(len(rest) / (time.perf_counter() - start))

            store = VectorStore(run_dir / "chroma", LocalMiniLM())  # never called: vectors are given
            start = time.perf_counter()
            for i in range(0, args.n, 5000):
                store.index_experiments(experiments[i:i + 5000], motivation_vectors=vectors[i:i + 5000])
            figures["vector_index_rows_per_s"] = round(args.n / (time.perf_counter() - start))

            rng = np.random.default_rng(args.seed + 1)
            queries = rng.standard_normal((args.queries, DIM)).astype(np.float32)
            novelty = MotivationNovelty(store, threshold=0.9)
            samples = timed(lambda i: novelty.check(queries[i]), args.queries)
            figures["novelty_p50_ms"], figures["novelty_p95_ms"] = percentile_ms(samples, 50), percentile_ms(samples, 95)

            samples = timed(lambda _: archive.briefs(), 5)
            figures["briefs_fetch_p50_ms"] = percentile_ms(samples, 50)
            briefs = archive.briefs()
            for name, sampler in (("uct", sample_parent_uct), ("qd", sample_parent_qd)):
                samples = timed(lambda i: sampler(briefs, i), 20)
                figures[f"sample_{name}_p50_ms"] = percentile_ms(samples, 50)
                figures[f"sample_{name}_p95_ms"] = percentile_ms(samples, 95)
            parent = sample_parent_uct(briefs, 0)
            figures["sample_references_p50_ms"] = percentile_ms(timed(lambda i: sample_references(briefs, parent, 4, i), 20), 50)
        reopen = subprocess.run([sys.executable, "-c", REOPEN, str(run_dir), str(REPO)], capture_output=True,
                                text=True, check=True)
        figures.update({k: round(v, 3) for k, v in json.loads(reopen.stdout.strip().splitlines()[-1]).items()})
        figures["archive_mb"] = round((run_dir / "archive.sqlite").stat().st_size / 2**20, 1)
    figures.update(hash_figures())
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
