"""Byte-level language modelling: next-byte prediction, judged by validation bits per byte.

Training batches are random windows of the training bytes (drawn from the seed and the step);
the validation set is the first `eval_batches * batch_size` non-overlapping windows of the
validation tail, the same for every seed so results of different seeds share one yardstick.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from evaluator.tasks.base import Batch, Model
from evaluator.tasks.corpus import Corpus, CorpusError, load_corpus

VOCAB_SIZE = 256


@dataclass(frozen=True)
class ByteLMConfig:
    corpus_bytes: int          # how much of the corpus to read (the default corpus is ~10 MB)
    val_fraction: float = 0.1


def windows(data: np.ndarray, starts: np.ndarray, length: int) -> Batch:
    rows = data[starts[:, None] + np.arange(length + 1)].astype(np.int64)
    return Batch(torch.from_numpy(rows[:, :-1].copy()), torch.from_numpy(rows[:, 1:].copy()))


class ByteLMData:
    def __init__(self, corpus: Corpus, seq_len: int, batch_size: int, eval_batches: int, seed: int):
        need = (seq_len + 1) * 2
        if len(corpus.train) < need or len(corpus.val) < seq_len + 1:
            raise CorpusError(f"corpus {corpus.source} has {len(corpus.data)} bytes: too few for windows of "
                              f"{seq_len} bytes; give at least {need * 10} bytes of text")
        self.corpus, self.seq_len, self.batch_size, self.seed = corpus, seq_len, batch_size, seed
        available = (len(corpus.val) - 1) // seq_len
        self.n_eval_windows = min(eval_batches * batch_size, available)

    def train_batch(self, step: int) -> Batch:
        rng = np.random.default_rng([self.seed, 0, step])
        starts = rng.integers(0, len(self.corpus.train) - self.seq_len - 1, size=self.batch_size)
        return windows(self.corpus.train, starts, self.seq_len)

    def eval_batches(self) -> list[tuple[int, Batch]]:
        starts = np.arange(self.n_eval_windows) * self.seq_len
        return [(self.seq_len, windows(self.corpus.val, chunk, self.seq_len))
                for chunk in np.array_split(starts, math.ceil(len(starts) / self.batch_size))]

    def describe(self) -> dict[str, Any]:
        return {"corpus_sha256": self.corpus.sha256, "corpus_source": self.corpus.source,
                "corpus_bytes": int(len(self.corpus.data)), "corpus_files": self.corpus.files,
                "val_bytes": int(len(self.corpus.val)), "val_windows": self.n_eval_windows}


class ByteLMTask:
    name = "bytelm"
    baseline = "gated_delta_rule"
    ceiling = "softmax_attention"
    description = ("Byte-level language modelling on text (by default a fixed sample of Python's own source "
                   "files). Fitness is the reduction in validation bits per byte relative to the baseline. "
                   "It rewards modelling local syntax and longer-range structure at once.")
    max_complexity_exponent = 1.5

    def vocab_size(self, budget: Any) -> int:
        return VOCAB_SIZE

    def make_data(self, budget: Any, seed: int, data_path: Path | None = None) -> ByteLMData:
        if not isinstance(budget.task_config, ByteLMConfig):
            raise TypeError(f"budget {budget.name!r} is not a bytelm budget")
        if len(budget.seq_lens) != 1:
            raise ValueError(f"bytelm trains at one length; budget {budget.name!r} lists {budget.seq_lens}")
        corpus = load_corpus(budget.task_config.corpus_bytes, budget.task_config.val_fraction, data_path)
        return ByteLMData(corpus, budget.seq_lens[0], budget.batch_size, budget.eval_batches, seed)

    def metrics(self, model: Model, data: ByteLMData, device: torch.device) -> dict[str, Any]:
        total_loss, total_bytes = 0.0, 0
        for _, batch in data.eval_batches():
            batch = batch.to(device)
            logits = model(batch.inputs).float()
            loss = F.cross_entropy(logits.flatten(0, 1), batch.targets.flatten(), reduction="sum")
            total_loss += float(loss)
            total_bytes += batch.targets.numel()
        val_loss = total_loss / total_bytes
        return {"val_loss": val_loss, "val_bpb": val_loss / math.log(2), **data.describe()}
