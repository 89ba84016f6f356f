"""`archlab replay` and `archlab export` on a real smoke run: one experiment re-evaluated bit-exactly on
the CPU, a tampered archive refused with the reason, the whole run re-run offline with the same
code hashes and statuses, and the export holding what the archive holds."""
from __future__ import annotations

import csv
import json
import stat

import pytest

from knowledge.archive import Archive
from tests.cli_support import cli
from tests.support.smoke_run import copy_run

pytestmark = pytest.mark.slow


def test_an_experiment_replays_bit_exactly_and_the_replay_is_recorded_beside_the_original(smoke_run, tmp_path):
    copy = copy_run(smoke_run, tmp_path / "runs")  # the replay is recorded in the run: not in the shared one
    with Archive.open(copy, readonly=True) as archive:
        before = archive.get_experiment("e0002")
    assert before.provenance and before.provenance.torch and before.provenance.data.get("0")

    done = cli("replay", str(copy), "e0002", cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "nothing: the same harness, torch" in done.stdout
    assert "verdict: reproduced bit-exactly" in done.stdout
    accuracy = next(line for line in done.stdout.splitlines() if line.startswith("accuracy "))
    recorded = before.metrics["metrics"]["accuracy"]
    assert accuracy.split()[1:3] == [f"{recorded:.6f}", f"{recorded:.6f}"]

    with Archive.open(copy, readonly=True) as archive:
        after = archive.get_experiment("e0002")
        [event] = archive.events(experiment_id="e0002", kind="replay")
    assert after == before  # never overwritten
    assert event.data["reproduced"] is True and event.data["replayed"][0]["metrics"] == before.metrics["metrics"]
    assert event.data["figures"]["accuracy"] == {"recorded": recorded, "replayed": recorded}


def test_a_changed_seed_in_the_archive_is_refused_with_the_reason(smoke_run, tmp_path):
    copy = copy_run(smoke_run, tmp_path / "runs")
    with Archive.open(copy) as archive:
        exp = archive.get_experiment("e0002")
        seeds = [{**entry, "seed": 7} for entry in exp.metrics["seeds"]]
        archive.update_experiment("e0002", metrics={**exp.metrics, "seeds": seeds})
    refused = cli("replay", str(copy), "e0002", cwd=tmp_path)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "contradicts itself" in refused.stderr and "eval.json says seed 0" in refused.stderr
    assert "evaluating" not in refused.stderr  # refused before any evaluation

    with Archive.open(copy) as archive:  # the seed changed everywhere it is written: the data is not the seed's
        exp = archive.get_experiment("e0002")
        provenance = exp.provenance.model_copy(update={"data": {"7": exp.provenance.data["0"]}})
        archive.update_experiment("e0002", metrics={**exp.metrics, "seed": 7}, provenance=provenance)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "seed": 7}))
    refused = cli("replay", str(copy), "e0002", cwd=tmp_path)
    assert refused.returncode == 2 and "seed 7: data hash recorded" in refused.stderr, refused.stderr
    assert "--allow-data-mismatch" in refused.stderr


def test_a_changed_data_hash_is_refused_unless_allowed_and_a_read_only_run_says_it_could_not_record(
        smoke_run, tmp_path):
    copy = copy_run(smoke_run, tmp_path / "runs")
    with Archive.open(copy) as archive:
        exp = archive.get_experiment("e0002")
        archive.update_experiment("e0002", provenance=exp.provenance.model_copy(update={"data": {"0": "0" * 64}}))
    refused = cli("replay", str(copy), "e0002", cwd=tmp_path)
    assert refused.returncode == 2 and "seed 0: data hash recorded 0000000000000000" in refused.stderr

    for item in [copy, *copy.rglob("*")]:
        item.chmod(stat.S_IMODE(item.stat().st_mode) & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        allowed = cli("replay", str(copy), "e0002", "--allow-data-mismatch", cwd=tmp_path, unprivileged=True,
                      timeout=300)
    finally:
        for item in [copy, *copy.rglob("*")]:
            item.chmod(stat.S_IMODE(item.stat().st_mode) | stat.S_IWUSR)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "data seed 0: data hash recorded 0000000000000000" in allowed.stdout  # said, then replayed
    assert "reproduced bit-exactly" in allowed.stdout and "could not record this replay" in allowed.stdout


def test_the_export_holds_every_field_but_the_code_unless_asked(smoke_run, tmp_path):
    with Archive.open(smoke_run, readonly=True) as archive:
        experiments = archive.experiments(run="smoke")
    out = tmp_path / "smoke.csv"
    done = cli("export", str(smoke_run), "--format", "csv", "-o", str(out), cwd=tmp_path)
    assert done.returncode == 0 and "2 experiments" in done.stderr, done.stderr
    rows = list(csv.DictReader(out.open()))
    assert [r["id"] for r in rows] == [e.id for e in experiments] and "code" not in rows[0]
    for row, exp in zip(rows, experiments):
        assert float(row["fitness.value"]) == exp.fitness.value and row["code_hash"] == exp.code_hash
        assert float(row["metrics.metrics.accuracy"]) == exp.metrics["metrics"]["accuracy"]
        assert row["provenance.torch"] == exp.provenance.torch and json.loads(row["reference_ids"]) == exp.reference_ids

    lines = cli("export", str(smoke_run), "--format", "jsonl", "--with-code", cwd=tmp_path).stdout.splitlines()
    records = [json.loads(line) for line in lines]
    assert records == [json.loads(e.model_dump_json()) for e in experiments]


def test_a_whole_offline_run_replays_with_the_same_code_and_statuses(smoke_run, tmp_path):
    copy = copy_run(smoke_run, tmp_path / "runs")
    done = cli("replay", str(copy), "--as", "again", cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 experiments, 2 the same, 0 diverged" in done.stdout
    with Archive.open(copy, readonly=True) as old, Archive.open(copy.parent / "again", readonly=True) as new:
        before, after = old.experiments(run="smoke"), new.experiments(run="again")
    assert [(e.id, e.code_hash, e.status, e.fitness) for e in after] == \
        [(e.id, e.code_hash, e.status, e.fitness) for e in before]
