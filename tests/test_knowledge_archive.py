"""The archive on real SQLite files: typed round trips, migrations, concurrent writers, crashes."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from knowledge import schema
from knowledge.archive import Archive, DuplicateExperimentError, ExperimentNotFoundError
from knowledge.records import Event, Experiment, Fitness, Insight, LLMCall, Stage

REPO = Path(__file__).resolve().parents[1]
METRICS = {
    "parameters": 12_000,
    "inference_latency_ms": {"256": 1.5, "2048": 9.0},
    "checks": [{"name": "complexity", "passed": True, "details": {"exponent": 1.07}}],
}


def experiment(exp_id: str, **fields) -> Experiment:
    return Experiment(id=exp_id, run="r1", **fields)


def call(exp_id: str | None, tokens: int = 10, usd: float = 0.5) -> LLMCall:
    return LLMCall(run="r1", experiment_id=exp_id, role="coder", model="m",
                   prompt=[{"role": "user", "content": "write it"}], response="ok",
                   prompt_tokens=tokens, completion_tokens=tokens, cost_usd=usd)


@pytest.fixture
def archive(tmp_path):
    with Archive.open(tmp_path) as opened:
        yield opened


def test_experiment_round_trip_keeps_every_field(archive, tmp_path):
    original = experiment(
        "e0001", name="delta", proposer="offline", motivation="overwrite memory", plan="p", code="x = 1",
        code_hash="c", structure_hash="s", parent_id="ref-a", reference_ids=["ref-b"], stage=Stage.EVALUATED,
        status="ok", metrics=METRICS, fitness=Fitness(value=0.2, stderr=0.01, seeds=2),
        analysis={"summary": "better"}, genome={"decay": "scalar"}, timings={"train": 3.5})
    stored = archive.add_experiment(original)
    assert stored.created_at > 0 and stored.updated_at == stored.created_at
    assert original.created_at == 0.0  # the caller's object is not modified
    with Archive.open(tmp_path / "archive.sqlite") as reopened:
        assert reopened.get_experiment("e0001") == stored


def test_open_refuses_a_path_that_is_neither_a_directory_nor_a_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="create the run directory"):
        Archive.open(tmp_path / "not-yet-created")
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        Archive.open(tmp_path / "missing" / "archive.sqlite")
    assert not (tmp_path / "not-yet-created").exists()


def test_add_twice_is_refused_and_save_overwrites_keeping_created_at(archive):
    first = archive.add_experiment(experiment("e0001", name="a"))
    with pytest.raises(DuplicateExperimentError, match="save_experiment"):
        archive.add_experiment(experiment("e0001", name="b"))
    saved = archive.save_experiment(experiment("e0001", name="b"))
    assert saved.created_at == first.created_at and saved.updated_at >= first.updated_at
    assert archive.get_experiment("e0001").name == "b"


def test_update_validates_fields_and_missing_ids(archive):
    archive.add_experiment(experiment("e0001"))
    updated = archive.update_experiment("e0001", stage="evaluated", status="ok", fitness={"value": 0.3})
    assert updated.stage is Stage.EVALUATED and updated.fitness == Fitness(value=0.3)
    assert archive.get_experiment("e0001") == updated
    with pytest.raises(ValueError, match="unknown experiment field"):
        archive.update_experiment("e0001", fitnes=1.0)
    with pytest.raises(ValueError, match="cannot be updated"):
        archive.update_experiment("e0001", created_at=1.0)
    with pytest.raises(ExperimentNotFoundError, match="e0404"):
        archive.update_experiment("e0404", name="x")
    with pytest.raises(ExperimentNotFoundError):
        archive.get_experiment("e0404")


def test_filters_hash_lookup_and_ids(archive):
    archive.add_experiments([
        experiment("e0001", stage=Stage.EVALUATED, status="ok", code_hash="h1"),
        experiment("e0002", stage=Stage.FAILED, status="leaky", code_hash="h1"),
        Experiment(id="e0003", run="r2", code_hash="h2"),
    ])
    assert [e.id for e in archive.experiments(run="r1")] == ["e0001", "e0002"]
    assert [e.id for e in archive.experiments(stage=Stage.FAILED)] == ["e0002"]
    assert [e.id for e in archive.experiments(status="ok")] == ["e0001"]
    assert [e.id for e in archive.find_by_code_hash("h1")] == ["e0001", "e0002"]
    assert archive.next_experiment_id("r1") == "e0004"  # skips ids stored without a reservation
    assert archive.next_experiment_id("r1") == "e0005"  # a reservation is never handed out twice


def test_find_by_genome_matches_equal_genomes_within_a_run(archive):
    genome = {"update": "delta", "conv": 4, "head_mult": 1.0}
    archive.add_experiment(experiment("e0001", genome=genome))
    archive.add_experiment(experiment("e0002", genome={**genome, "conv": 2}))
    archive.add_experiment(Experiment(id="e0003", run="r2", genome=genome))
    assert [e.id for e in archive.find_by_genome(dict(reversed(genome.items())), "r1")] == ["e0001"]
    assert archive.find_by_genome({**genome, "conv": 3}, "r1") == []


def test_briefs_carry_descriptors_from_metrics(archive):
    archive.add_experiment(experiment("e0001", stage=Stage.EVALUATED, status="ok", metrics=METRICS,
                                      fitness=Fitness(value=0.4, flagged="beats the ceiling")))
    (brief,) = archive.briefs()
    assert brief.fitness == 0.4 and brief.flagged
    assert brief.log10_params == pytest.approx(4.0792, abs=1e-4)
    assert brief.complexity_exponent == 1.07 and brief.latency_ms == 9.0
    assert brief.selection_weight == 1.0  # no judge ran
    archive.update_experiment("e0001", analysis={"judge": {"novelty": 9, "complexity": 2, "weight": 1.2}})
    assert archive.briefs()[0].selection_weight == 1.2


def test_llm_calls_add_to_experiment_cost_and_spend(archive):
    archive.add_experiment(experiment("e0001"))
    archive.record_llm_call(call("e0001", tokens=10, usd=0.25))
    archive.record_llm_call(call("e0001", tokens=5, usd=0.5))
    archive.record_llm_call(call(None, tokens=1, usd=0.0))
    assert archive.spend("r1") == (3, 32, 0.75)
    assert archive.spend("other") == (0, 0, 0.0)
    exp = archive.get_experiment("e0001")
    assert (exp.tokens, exp.cost_usd) == (30, 0.75)
    calls = archive.llm_calls(experiment_id="e0001")
    assert [c.prompt_tokens for c in calls] == [10, 5] and calls[0].created_at > 0


def test_events_in_order_with_filters(archive):
    for i in range(5):
        archive.log_event(Event(run="r1", kind="stage" if i % 2 else "failure", message=f"m{i}",
                                experiment_id="e0001", data={"i": i}))
    assert [e.message for e in archive.events(run="r1")] == ["m0", "m1", "m2", "m3", "m4"]
    assert [e.message for e in archive.events(kind="stage")] == ["m1", "m3"]
    assert [e.data["i"] for e in archive.events(limit=2)] == [3, 4]
    cutoff = archive.events()[2].created_at
    assert [e.message for e in archive.events(since=cutoff)] == ["m3", "m4"]


def test_insights_upsert_by_id(archive):
    archive.add_insight(Insight(id="i1", title="t", text="a", source="user", metadata={"k": 1}))
    archive.add_insight(Insight(id="i1", title="t", text="b", source="user", metadata={"k": 2}))
    archive.add_insight(Insight(id="c1", title="t", text="c", source="cognition"))
    assert [(i.id, i.text) for i in archive.insights(source="user")] == [("i1", "b")]
    archive.delete_insights(["i1"])
    assert [i.id for i in archive.insights()] == ["c1"]


def test_v1_database_is_migrated_forward(tmp_path):
    path = tmp_path / "archive.sqlite"
    old = sqlite3.connect(path)
    schema.MIGRATIONS[0](old)  # the v1 DDL as it shipped
    old.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    old.execute("INSERT INTO schema_version VALUES (1)")
    old.execute(
        "INSERT INTO experiments (id, run, stage, status, metrics, fitness, created_at, updated_at)"
        " VALUES ('e0001', 'r1', 'evaluated', 'ok', ?, ?, 1.0, 1.0)",
        (json.dumps(METRICS), json.dumps({"value": 0.3, "stderr": 0.0, "seeds": 1, "flagged": ""})))
    old.execute("UPDATE experiments SET analysis=? WHERE id='e0001'", (json.dumps({"judge": {"weight": 0.8}}),))
    old.commit()
    old.close()
    with Archive.open(path) as archive:
        (brief,) = archive.briefs()
        assert brief.fitness == 0.3 and brief.complexity_exponent == 1.07
        assert brief.selection_weight == 0.8  # backfilled from the judge's recorded weight
        assert archive.get_experiment("e0001").metrics == METRICS
    check = sqlite3.connect(path)
    assert check.execute("SELECT version FROM schema_version").fetchone()[0] == schema.SCHEMA_VERSION
    check.close()


def test_newer_schema_is_refused(tmp_path):
    Archive.open(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "archive.sqlite")
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(schema.SchemaTooNewError, match="upgrade archlab"):
        Archive.open(tmp_path)


def test_threads_write_concurrently_without_losing_anything(archive):
    archive.add_experiment(experiment("shared"))
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                exp_id = archive.next_experiment_id("r1")
                archive.add_experiment(experiment(exp_id))
                archive.update_experiment(exp_id, stage="coded")
                archive.record_llm_call(call("shared", tokens=1, usd=0.0))
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    ids = [e.id for e in archive.experiments(stage="coded")]
    assert len(ids) == len(set(ids)) == 120
    assert archive.get_experiment("shared").tokens == 2 * 120  # no lost read-modify-write


WRITER = """
import sys, time
from knowledge.archive import Archive
from knowledge.records import Experiment, LLMCall
archive = Archive.open(sys.argv[1])
count, hang_after = int(sys.argv[2]), int(sys.argv[3])

def hang_in_transaction(statement):
    # Fault injection: the call's row is written, its cost update is next, nothing committed yet.
    if statement.startswith("UPDATE experiments SET tokens"):
        print("mid-transaction", flush=True)
        time.sleep(600)

for i in range(count):
    if i == hang_after:
        archive._connection().set_trace_callback(hang_in_transaction)
    exp_id = archive.next_experiment_id("r1")
    archive.add_experiment(Experiment(id=exp_id, run="r1", code=exp_id * 20_000))
    archive.record_llm_call(LLMCall(run="r1", experiment_id="shared", role="coder", model="m",
                                    prompt=[], prompt_tokens=1))
    print(exp_id, flush=True)
"""


def writer(path: Path, count: int, hang_after: int = -1) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(count), str(hang_after)],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)


def test_processes_write_concurrently(tmp_path):
    with Archive.open(tmp_path) as archive:
        archive.add_experiment(experiment("shared"))
    workers = [writer(tmp_path, 15) for _ in range(3)]
    printed = [line.split()[0] for w in workers for line in w.communicate()[0].splitlines()]
    assert all(w.returncode == 0 for w in workers)
    with Archive.open(tmp_path) as archive:
        stored = {e.id: e for e in archive.experiments()}
        assert len(printed) == len(set(printed)) == 45 and set(printed) <= set(stored)
        assert stored["shared"].tokens == 45


def test_kill_9_mid_transaction_leaves_a_consistent_archive(tmp_path):
    with Archive.open(tmp_path) as archive:
        archive.add_experiment(experiment("shared"))
    proc = writer(tmp_path, 100, hang_after=20)
    lines = [proc.stdout.readline().strip() for _ in range(21)]
    assert lines[-1] == "mid-transaction"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with Archive.open(tmp_path) as archive:
        assert archive.integrity_check() == ["ok"]
        stored = {e.id: e for e in archive.experiments() if e.id != "shared"}
        assert set(lines[:-1]) < set(stored) and len(stored) == 21  # the 21st was committed before the call
        for exp_id, exp in stored.items():  # every row whole: no truncated code
            assert hashlib.sha256(exp.code.encode()).digest() == hashlib.sha256((exp_id * 20_000).encode()).digest()
        assert len(archive.llm_calls()) == 20  # the killed call left no row ...
        assert archive.get_experiment("shared").tokens == 20  # ... and no half of its cost update
    with Archive.open(tmp_path) as archive:  # and the file takes writes again
        archive.record_llm_call(call("shared", tokens=1))
        assert archive.get_experiment("shared").tokens == 22
