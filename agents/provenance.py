"""What an evaluation ran with beyond its eval.json: library versions, threads and a hash of the
data each seed trains and is judged on. Recorded by the orchestrator with the result, so that
`archlab replay` can say plainly what differs when a figure does not come out the same."""
from __future__ import annotations

import hashlib
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from evaluator.budgets import get_budget
from evaluator.tasks import get_task
from knowledge.records import Provenance

TRAIN_BATCHES_HASHED = 4  # with every evaluation batch: enough to see another generator or corpus


def archlab_version() -> str:
    try:
        return version("archlab")
    except PackageNotFoundError:  # a checkout that was never installed
        return "unknown"


def environment(threads: int | None) -> Provenance:
    """This process's libraries (the worker runs the same interpreter) and the threads per evaluation."""
    import numpy
    import torch

    return Provenance(torch=torch.__version__, numpy=numpy.__version__, python=platform.python_version(),
                      archlab=archlab_version(), threads=threads)


def data_sha256(task: str, budget: str, seed: int, data: Path | None) -> str:
    """A hash of the data an evaluation of `task` at `budget` with `seed` uses: bytelm's corpus hash
    (the one its metrics report), else the evaluation batches and the first training batches."""
    generated = get_task(task).make_data(get_budget(task, budget), seed, data)
    corpus = generated.describe().get("corpus_sha256")
    if corpus:
        return str(corpus)
    digest = hashlib.sha256()
    batches = [batch for _, batch in generated.eval_batches()]
    batches += [generated.train_batch(step) for step in range(TRAIN_BATCHES_HASHED)]
    for batch in batches:
        digest.update(batch.inputs.numpy().tobytes())
        digest.update(batch.targets.numpy().tobytes())
    return digest.hexdigest()


def provenance(task: str, budget: str, seeds: list[int], data: Path | None, threads: int | None) -> Provenance:
    """The environment plus one data hash per seed; a seed whose data cannot be made has none
    (its evaluation failed on the same error, which its reason records)."""
    hashes = {}
    for seed in seeds:
        try:
            hashes[str(seed)] = data_sha256(task, budget, seed, data)
        except (OSError, ValueError, TypeError):
            continue
    return environment(threads).model_copy(update={"data": hashes})
