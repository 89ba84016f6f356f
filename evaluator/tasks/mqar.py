"""Multi-query associative recall (Zoology, Arora et al. 2023): can the mixer look things up in context?

Each sequence opens with N key-value pairs `k1 v1 ... kN vN`; afterwards every key is queried
once, at a position drawn with a power law that favours short gaps, and the token after a
query must be its value. Keys and values come from disjoint halves of the vocabulary, filler
tokens from the value half (so a filler never looks like a key). Loss and accuracy count only
the answer positions. Training mixes several lengths (one length per step, cycling); the
evaluation set is drawn from other seeds than any training batch.

A budget may give an evaluation sweep (`eval_points`: (length, pairs) points up to and beyond what
a fixed-size state holds). Then the headline `accuracy` is the mean over the sweep's points, each
point kept in `accuracy_by_point` ("length/pairs"): a mean over a sweep of difficulty does not
saturate at 1.0 as soon as one easy setting is solved, so the best candidates still differ.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evaluator.tasks.base import IGNORE_INDEX, Batch, Model

TRAIN_STREAM, EVAL_STREAM = 0, 1  # separate seed streams: the held-out set never meets training


@dataclass(frozen=True)
class MQARConfig:
    vocab_size: int
    kv_pairs: tuple[int, ...]  # number of pairs at each of the budget's seq_lens (same order)
    power_a: float = 0.01      # query gap distribution p(g) ~ g^(a-1), Zoology's default
    eval_points: tuple[tuple[int, int], ...] = ()  # held-out (length, pairs) sweep; () = the training settings


def generate(length: int, kv_pairs: int, vocab_size: int, batch: int, rng: np.random.Generator,
             power_a: float = 0.01) -> Batch:
    """One batch of MQAR sequences of `length` tokens with `kv_pairs` pairs each."""
    context = 2 * kv_pairs
    slots = (length - context) // 2  # a query and its answer take two positions
    half = vocab_size // 2
    if kv_pairs < 1 or slots < kv_pairs or half - 1 < kv_pairs:
        raise ValueError(f"MQAR cannot fit {kv_pairs} key-value pairs in length {length} with vocabulary "
                         f"{vocab_size}: need length >= 4 * pairs and vocab_size >= 2 * (pairs + 1)")
    keys = np.argsort(rng.random((batch, half - 1)), axis=1)[:, :kv_pairs] + 1   # distinct, in [1, half)
    values = np.argsort(rng.random((batch, half)), axis=1)[:, :kv_pairs] + half  # distinct, in [half, V)
    weights = power_a * np.arange(1, slots + 1, dtype=np.float64) ** (power_a - 1)
    # Gumbel top-k: `kv_pairs` distinct slots drawn without replacement with probability ~ weights.
    gumbel = np.log(weights) - np.log(-np.log(rng.random((batch, slots))))
    gaps = np.argsort(-gumbel, axis=1)[:, :kv_pairs]

    sequence = rng.integers(half, vocab_size, size=(batch, length + 1))  # filler from the value half
    sequence[:, 0:context:2], sequence[:, 1:context:2] = keys, values
    query_positions = context + 2 * gaps
    np.put_along_axis(sequence, query_positions, keys, axis=1)
    np.put_along_axis(sequence, query_positions + 1, values, axis=1)

    targets = np.full((batch, length), IGNORE_INDEX, dtype=np.int64)
    np.put_along_axis(targets, query_positions, values, axis=1)  # the input at a query predicts its value
    return Batch(torch.from_numpy(sequence[:, :-1].copy()), torch.from_numpy(targets))


class MQARData:
    def __init__(self, config: MQARConfig, seq_lens: tuple[int, ...], batch_size: int, eval_batches: int,
                 seed: int):
        if len(config.kv_pairs) != len(seq_lens):
            raise ValueError(f"MQAR budget lists {len(config.kv_pairs)} kv_pairs for {len(seq_lens)} "
                             "seq_lens: give one number of pairs per training length")
        self.config, self.seq_lens, self.batch_size = config, seq_lens, batch_size
        self.n_eval_batches, self.seed = eval_batches, seed
        self.points = config.eval_points or tuple(zip(seq_lens, config.kv_pairs))
        for length, pairs in self.points:  # a sweep that cannot be generated fails before any training
            generate(length, pairs, config.vocab_size, 1, np.random.default_rng(0), config.power_a)

    def _batch(self, index: int, stream: int, step: int) -> Batch:
        rng = np.random.default_rng([self.seed, stream, index, step])
        return generate(self.seq_lens[index], self.config.kv_pairs[index], self.config.vocab_size,
                        self.batch_size, rng, self.config.power_a)

    def train_batch(self, step: int) -> Batch:
        return self._batch(step % len(self.seq_lens), TRAIN_STREAM, step)

    def eval_sweep(self) -> list[tuple[tuple[int, int], Batch]]:
        """((length, pairs), batch) for every point of the held-out sweep, `eval_batches` batches each."""
        found = []
        for i, (length, pairs) in enumerate(self.points):
            for j in range(self.n_eval_batches):
                rng = np.random.default_rng([self.seed, EVAL_STREAM, i, j, length, pairs])
                found.append(((length, pairs), generate(length, pairs, self.config.vocab_size, self.batch_size,
                                                        rng, self.config.power_a)))
        return found

    def eval_batches(self) -> list[tuple[int, Batch]]:
        if not self.config.eval_points:  # the training settings: the same batches as before sweeps existed
            return [(self.seq_lens[i], self._batch(i, EVAL_STREAM, j))
                    for i in range(len(self.seq_lens)) for j in range(self.n_eval_batches)]
        return [(point[0], batch) for point, batch in self.eval_sweep()]

    def describe(self) -> dict[str, Any]:
        found = {"vocab_size": self.config.vocab_size,
                 "kv_pairs_by_length": {str(t): n for t, n in zip(self.seq_lens, self.config.kv_pairs)}}
        if self.config.eval_points:
            found["eval_points"] = [point_name(p) for p in self.points]
        return found


def point_name(point: tuple[int, int]) -> str:
    return f"{point[0]}/{point[1]}"


class MQARTask:
    name = "mqar"
    baseline = "gated_delta_rule"
    ceiling = "softmax_attention"
    description = ("Multi-query associative recall: a sequence of key-value pairs, then queries of earlier keys; "
                   "the model must output each queried key's value. Fitness is recall accuracy over several "
                   "sequence lengths and pair counts, relative to the baseline. It rewards a state that stores "
                   "many bindings and retrieves them precisely.")
    max_complexity_exponent = 1.5

    def vocab_size(self, budget: Any) -> int:
        return budget.task_config.vocab_size

    def make_data(self, budget: Any, seed: int, data_path: Path | None = None) -> MQARData:
        if data_path is not None:
            raise ValueError("task mqar generates its data from the seed and takes no data path; drop --data")
        if not isinstance(budget.task_config, MQARConfig):
            raise TypeError(f"budget {budget.name!r} is not an mqar budget")
        return MQARData(budget.task_config, budget.seq_lens, budget.batch_size, budget.eval_batches, seed)

    def metrics(self, model: Model, data: MQARData, device: torch.device) -> dict[str, Any]:
        if data.config.eval_points:
            return self.sweep_metrics(model, data, device)
        correct: dict[int, int] = {}
        total: dict[int, int] = {}
        for length, batch in data.eval_batches():
            batch = batch.to(device)
            predictions = model(batch.inputs).argmax(dim=-1)
            mask = batch.loss_mask
            correct[length] = correct.get(length, 0) + int((predictions == batch.targets)[mask].sum())
            total[length] = total.get(length, 0) + int(mask.sum())
        by_length = {str(t): correct[t] / total[t] for t in sorted(total)}
        # Each length weighs the same, so the longer (harder) lengths are not drowned out.
        return {"accuracy": sum(by_length.values()) / len(by_length), "accuracy_by_length": by_length,
                **data.describe()}

    def sweep_metrics(self, model: Model, data: MQARData, device: torch.device) -> dict[str, Any]:
        """Recall at every sweep point; the headline is their mean (each point weighs the same)."""
        correct: dict[tuple[int, int], int] = {}
        total: dict[tuple[int, int], int] = {}
        for point, batch in data.eval_sweep():
            batch = batch.to(device)
            predictions = model(batch.inputs).argmax(dim=-1)
            mask = batch.loss_mask
            correct[point] = correct.get(point, 0) + int((predictions == batch.targets)[mask].sum())
            total[point] = total.get(point, 0) + int(mask.sum())
        by_point = {point_name(p): correct[p] / total[p] for p in data.points}
        lengths = sorted({p[0] for p in data.points})
        by_length = {str(t): sum(correct[p] / total[p] for p in data.points if p[0] == t)
                     / sum(1 for p in data.points if p[0] == t) for t in lengths}
        return {"accuracy": sum(by_point.values()) / len(by_point), "accuracy_by_point": by_point,
                "accuracy_by_length": by_length, **data.describe()}
