"""Tasks and budgets: data generated from seeds, masks, splits, corpora and clear errors."""
from __future__ import annotations

import sysconfig
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluator.budgets import get_budget, list_budgets
from evaluator.tasks import IGNORE_INDEX, get_task, list_tasks
from evaluator.tasks.corpus import CorpusError, load_corpus, stdlib_files
from evaluator.tasks.mqar import generate


def test_registry_lists_tasks_and_rejects_unknown_names():
    assert list_tasks() == ["bytelm", "mqar"]
    with pytest.raises(ValueError, match="known tasks: bytelm, mqar"):
        get_task("mqarr")


def test_every_task_has_smoke_cpu_cpu_suite_and_gpu_budgets_and_unknown_names_list_the_choices():
    for task in list_tasks():
        assert {name for t, name in list_budgets(task)} == {"smoke", "cpu", "cpu-suite", "gpu"}
    with pytest.raises(ValueError, match="choose one of: cpu, cpu-suite, gpu, smoke"):
        get_budget("mqar", "huge")
    with pytest.raises(ValueError, match="known tasks"):
        get_budget("imagenet", "cpu")


def test_mqar_answers_are_the_values_of_the_queried_keys():
    batch = generate(length=64, kv_pairs=8, vocab_size=64, batch=16, rng=np.random.default_rng(0))
    inputs, targets = batch.inputs.numpy(), batch.targets.numpy()
    assert inputs.shape == targets.shape == (16, 64)
    for row, answers in zip(inputs, targets):
        keys, values = row[0:16:2], row[1:16:2]
        assert set(keys) < set(range(1, 32)) and set(values) <= set(range(32, 64))  # disjoint halves
        assert len(set(keys)) == 8
        lookup = dict(zip(keys, values))
        scored = np.flatnonzero(answers != IGNORE_INDEX)
        assert len(scored) == 8 and scored.min() >= 16  # every key queried once, after the context
        for position in scored:
            assert answers[position] == lookup[row[position]]  # the input at a query is its key
            assert position + 1 >= 64 or row[position + 1] == answers[position]  # and the value follows


def test_mqar_data_is_deterministic_per_seed_and_eval_is_held_out():
    task, budget = get_task("mqar"), get_budget("mqar", "smoke")
    first, again, other = (task.make_data(budget, seed) for seed in (0, 0, 1))
    assert torch.equal(first.train_batch(3).inputs, again.train_batch(3).inputs)
    assert not torch.equal(first.train_batch(3).inputs, other.train_batch(3).inputs)
    assert first.train_batch(0).inputs.shape[1] != first.train_batch(1).inputs.shape[1]  # lengths cycle
    train = {tuple(row.tolist()) for step in range(4) for row in first.train_batch(step).inputs}
    held_out = {tuple(row.tolist()) for _, batch in first.eval_batches() for row in batch.inputs}
    assert not train & held_out
    assert sorted({length for length, _ in first.eval_batches()}) == list(budget.seq_lens)


def test_mqar_refuses_impossible_settings_and_a_data_path():
    with pytest.raises(ValueError, match="cannot fit 20 key-value pairs in length 64"):
        generate(64, 20, 64, 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="takes no data path"):
        get_task("mqar").make_data(get_budget("mqar", "smoke"), 0, data_path="corpus.txt")


def test_mqar_metrics_score_only_answer_positions():
    task, budget = get_task("mqar"), get_budget("mqar", "smoke")
    data = task.make_data(budget, 0)

    def oracle(tokens: torch.Tensor) -> torch.Tensor:
        """Knows the answers of the held-out set: puts all mass on the target, else on token 0."""
        for _, batch in data.eval_batches():
            if torch.equal(batch.inputs, tokens):
                return torch.nn.functional.one_hot(batch.targets.clamp(min=0), 64).float()
        raise AssertionError("unknown batch")
    metrics = task.metrics(oracle, data, torch.device("cpu"))
    assert metrics["accuracy"] == 1.0 and set(metrics["accuracy_by_length"]) == {"32", "64"}
    silent = task.metrics(lambda tokens: torch.zeros(*tokens.shape, 64), data, torch.device("cpu"))
    assert silent["accuracy"] < 0.1  # argmax 0 is never an answer (values live in the upper half)


def test_default_corpus_is_the_sorted_stdlib_without_tests_and_records_its_hash():
    root = Path(sysconfig.get_paths()["stdlib"])
    relative = [f.relative_to(root).as_posix() for f in stdlib_files()]
    assert relative == sorted(relative) and "argparse.py" in relative
    assert not any(part in ("test", "tests", "encodings", "site-packages") for p in relative for part in p.split("/"))
    corpus = load_corpus(64 * 1024, 0.1)
    assert len(corpus.data) == 64 * 1024 and len(corpus.val) == int(64 * 1024 * 0.1)
    assert corpus.sha256 == load_corpus(64 * 1024, 0.1).sha256 and corpus.source.startswith("python-stdlib-")


def test_bytelm_metrics_report_bits_per_byte_and_the_corpus(tmp_path):
    (tmp_path / "a.txt").write_text("hello world, " * 2000)
    task, budget = get_task("bytelm"), get_budget("bytelm", "smoke")
    data = task.make_data(budget, 0, tmp_path)
    uniform = task.metrics(lambda tokens: torch.zeros(*tokens.shape, 256), data, torch.device("cpu"))
    assert uniform["val_bpb"] == pytest.approx(8.0, abs=1e-4)  # a uniform guess over 256 bytes
    assert uniform["corpus_source"] == str(tmp_path.resolve()) and uniform["corpus_files"] == 1
    batch = data.train_batch(0)
    assert torch.equal(batch.inputs[:, 1:], batch.targets[:, :-1])  # next-byte targets


@pytest.mark.parametrize("setup, message", [
    (lambda d: d / "missing", "does not exist"),
    (lambda d: (d / "empty").mkdir() or d / "empty", "holds no files"),
    (lambda d: (d / "blank.txt").write_text("  \n") and d / "blank.txt", "is empty"),
    (lambda d: (d / "model.bin").write_bytes(b"ab\0cd" * 100) and d / "model.bin", "looks binary"),
    (lambda d: (d / "tiny.txt").write_text("short") and d / "tiny.txt", "too few"),
])
def test_bytelm_refuses_unusable_user_data_with_a_clear_error(tmp_path, setup, message):
    with pytest.raises(CorpusError, match=message):
        get_task("bytelm").make_data(get_budget("bytelm", "smoke"), 0, setup(tmp_path))
