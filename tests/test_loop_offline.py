"""An offline discovery run end to end: real sandboxed training at the smoke budget, the real
archive and vector store, driven through the command line as a user would."""
from __future__ import annotations

import importlib.util
import json

import pytest

from knowledge.archive import Archive
from knowledge.embeddings import make_embedder
from knowledge.records import Stage
from knowledge.vectors import VectorStore
from tests.loop_support import archlab, status, write_config
from tests.support.smoke_run import SMOKE_RUN, copy_run

pytestmark = pytest.mark.slow


def test_offline_run_finishes_every_experiment_and_archives_it(tmp_path):
    config = write_config(tmp_path, experiments=4)
    done = archlab("run", "--config", str(config), "--name", "offline", cwd=tmp_path)
    assert "4/4 done" in done.stderr + done.stdout
    run_dir = tmp_path / "runs" / "offline"

    report = status(run_dir, tmp_path)
    assert report["experiments"] == 4 and report["finished"] == 4
    baseline = report["references"]["gated_delta_rule"]
    assert baseline["status"] == "ok" and baseline["fitness"] == 0.0
    assert 0.0 <= baseline["metrics"]["accuracy"] <= 1.0

    with Archive.open(run_dir / "archive.sqlite") as archive:
        experiments = archive.experiments(run="offline")
        proposals = [e for e in experiments if e.proposer != "reference"]
        assert len({e.id for e in experiments}) == len(experiments) == 5
        for exp in proposals:
            assert exp.finished, exp
            assert exp.proposer == "offline" and exp.genome and exp.parent_id and exp.motivation
            if exp.stage is Stage.ANALYZED:
                assert exp.status and exp.analysis["summary"]
                assert (run_dir / "experiments" / exp.id / "eval-seed0" / "eval.json").is_file()
                assert exp.timings["train"] > 0 and exp.timings["evaluate"] >= exp.timings["train"]
            else:
                assert exp.reason, exp
            if exp.status == "ok":
                assert exp.fitness is not None and exp.fitness.seeds >= 1
        # every finished step is recorded once: one "proposed" and at most one "analyzed" per experiment
        for exp in proposals:
            messages = [e.message for e in archive.events(experiment_id=exp.id) if e.kind == "stage"]
            assert sum(m.startswith("proposed") for m in messages) == 1  # no crash here: exactly once
            assert messages.count("analyzed") == (exp.stage is Stage.ANALYZED)
        store = VectorStore(run_dir / "chroma", make_embedder("local"))
        consistency = store.check_consistency(archive)
        assert consistency.ok, consistency

    listing = archlab("ls", str(run_dir), cwd=tmp_path).stdout
    assert "gated_delta_rule" in listing and proposals[0].id in listing
    shown = archlab("show", str(run_dir), proposals[0].id, "--json", cwd=tmp_path).stdout
    assert json.loads(shown)["id"] == proposals[0].id
    missing = archlab("show", str(run_dir), "e9999", cwd=tmp_path, check=False)
    assert missing.returncode == 2 and "e9999" in missing.stderr


def test_a_second_run_with_the_same_name_is_refused(smoke_run, tmp_path):
    run_dir = copy_run(smoke_run, tmp_path / "runs")  # a run `archlab run` made, in this runs directory
    config = write_config(tmp_path, experiments=0)
    before = (run_dir / "config.json").read_text()
    again = archlab("run", "--config", str(config), "--name", SMOKE_RUN, cwd=tmp_path, check=False)
    assert again.returncode == 2 and "archlab resume" in again.stderr
    assert (run_dir / "config.json").read_text() == before  # the run is left as it was


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is an optional dependency")
def test_a_run_can_evaluate_on_ray(tmp_path):
    config = write_config(tmp_path, experiments=2)
    archlab("run", "--config", str(config), "--name", "on-ray", "--ray", "local", cwd=tmp_path)
    run_dir = tmp_path / "runs" / "on-ray"
    report = status(run_dir, tmp_path)
    assert report["finished"] == 2 and report["references"]["gated_delta_rule"]["status"] == "ok"
    with Archive.open(run_dir / "archive.sqlite") as archive:
        [session] = [e for e in archive.events() if e.kind == "session"]
        assert session.data == {"executor": "RayExecutor", "capacity": 2}
        for exp in archive.experiments(run="on-ray"):
            assert exp.finished and (exp.stage is Stage.ANALYZED or exp.reason), exp
            if exp.stage is Stage.ANALYZED:
                assert (run_dir / "experiments" / exp.id / "eval-seed0" / "eval.json").is_file()
