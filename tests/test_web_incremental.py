"""A served run that keeps being written: every page shows the write made after it was first
served (no stale data), while the server decodes only the experiments that changed."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from archlab.web.app import create_app
from knowledge.archive import Archive
from knowledge.records import Event, Experiment, Fitness, LLMCall, Stage
from tests.web_support import CODE, synthetic_run

RUN = "synth"
IN_FLIGHT = "e0018"  # synthetic_run(proposals=12)'s last experiment: approved, not trained yet


@pytest.fixture
def served(tmp_path):
    runs = tmp_path / "runs"
    run_dir = synthetic_run(runs, RUN, proposals=12, hostile=False)
    app = create_app(runs)
    return run_dir, app, TestClient(app, base_url="http://localhost")


def test_pages_show_writes_made_after_they_were_first_served(served):
    run_dir, app, client = served
    pages = {"dashboard": f"/runs/{RUN}", "table": f"/runs/{RUN}/experiments", "tree": f"/runs/{RUN}/tree",
             "experiment": f"/runs/{RUN}/experiments/{IN_FLIGHT}"}
    first = {name: client.get(path) for name, path in pages.items()}
    assert all(page.status_code == 200 for page in first.values())
    assert "champion" not in first["dashboard"].text and "e0019" not in first["table"].text
    summary = client.get(f"/api/runs/{RUN}").json()
    before = app.state.web.cache.get(run_dir)

    with Archive.open(run_dir) as archive:  # what a driver writes while the pages are open
        archive.update_experiment(IN_FLIGHT, name="champion", stage=Stage.ANALYZED, status="ok",
                                  fitness=Fitness(value=0.5, stderr=0.01))
        archive.add_experiment(Experiment(id="e0019", run=RUN, name="newcomer", proposer="offline",
                                          parent_id=IN_FLIGHT, code=CODE, stage=Stage.APPROVED))
        archive.record_llm_call(LLMCall(run=RUN, experiment_id="e0019", role="coder", model="openai/test",
                                        prompt=[{"role": "user", "content": "write it"}], response="done",
                                        prompt_tokens=1000, completion_tokens=234, cost_usd=0.5))
        archive.log_event(Event(run=RUN, kind="stage", message="champion analysed", experiment_id=IN_FLIGHT))

    assert '13 <small>of 17 proposals finished' in first["dashboard"].text
    dashboard = client.get(pages["dashboard"]).text
    assert "champion" in dashboard and '14 <small>of 17 proposals finished' in dashboard
    table = client.get(pages["table"]).text
    assert "newcomer" in table and "champion" in table
    tree = client.get(pages["tree"]).text
    assert "e0019" in tree and "champion" in tree
    experiment = client.get(pages["experiment"]).text
    assert "champion analysed" in experiment, "the new event"
    assert "/experiments/e0019" in experiment, "the new child"
    assert client.get(f"/runs/{RUN}/experiments/e0019").status_code == 200
    fresh = client.get(f"/api/runs/{RUN}").json()
    assert fresh["best"]["id"] == IN_FLIGHT and fresh["best"]["fitness"] == 0.5
    assert fresh["progress"]["done"] == summary["progress"]["done"] + 1
    assert fresh["progress"]["in_flight"] == ["e0019"]
    assert fresh["spend"]["llm_calls"] == summary["spend"]["llm_calls"] + 1
    assert fresh["fitness"][-1]["id"] == IN_FLIGHT and fresh["fitness"][-1]["best_so_far"] == 0.5
    nodes = {n["id"]: n for n in client.get(f"/api/runs/{RUN}/tree").json()}
    assert nodes["e0019"]["parent_id"] == IN_FLIGHT and nodes[IN_FLIGHT]["children"] == ["e0019"]
    assert nodes[IN_FLIGHT]["outcome"] == "ok" and nodes[IN_FLIGHT]["fitness"] == 0.5

    after = app.state.web.cache.get(run_dir)   # only what changed was decoded again
    assert all(after.by_id[i] is exp for i, exp in before.by_id.items() if i != IN_FLIGHT)
    assert after.by_id[IN_FLIGHT] is not before.by_id[IN_FLIGHT] and after.by_id[IN_FLIGHT].name == "champion"


def test_a_write_that_changes_no_drawn_figure_keeps_the_layout_and_an_event_keeps_everything(served):
    run_dir, app, client = served
    cache = app.state.web.cache
    client.get(f"/runs/{RUN}/tree")
    client.get(f"/runs/{RUN}")
    laid_out = cache.get(run_dir).memo.kept["lineage"][1]
    with Archive.open(run_dir) as archive:   # tokens of the experiment in flight: not drawn in the tree
        archive.record_llm_call(LLMCall(run=RUN, experiment_id=IN_FLIGHT, role="coder", model="openai/test",
                                        prompt=[], response="", prompt_tokens=7, completion_tokens=0))
    rows = client.get(f"/api/runs/{RUN}/experiments", params={"q": IN_FLIGHT}).json()
    assert rows[0]["llm_tokens"] == 7   # the table shows the new tokens ...
    client.get(f"/runs/{RUN}/tree")
    snapshot = cache.get(run_dir)
    assert snapshot.memo.kept["lineage"][1] is laid_out   # ... the tree was not laid out again
    client.get(f"/runs/{RUN}")
    summary = cache.get(run_dir).memo.content["standing"]
    with Archive.open(run_dir) as archive:
        archive.log_event(Event(run=RUN, kind="note", message="an event only"))
    client.get(f"/runs/{RUN}")
    assert cache.get(run_dir).memo.content["standing"] is summary   # nothing the pages derive changed


def test_the_archive_reports_only_changed_experiments_without_writing(tmp_path):
    run_dir = synthetic_run(tmp_path / "runs", RUN, proposals=3, hostile=False)
    with Archive.open(run_dir, readonly=True) as reader:
        order, everything = reader.experiments_changed(RUN, {})
        assert order == [f"e{i:04d}" for i in range(1, 10)] and {e.id for e in everything} == set(order)
        known = {e.id: e.updated_at for e in everything}
        assert reader.experiments_changed(RUN, known) == (order, [])
        with Archive.open(run_dir) as writer:
            writer.update_experiment("e0004", reason="looked again")
            writer.add_experiment(Experiment(id="e0010", run=RUN, name="new", stage=Stage.PROPOSED))
        order, changed = reader.experiments_changed(RUN, known)
        assert order[-1] == "e0010" and sorted(e.id for e in changed) == ["e0004", "e0010"]
        assert reader.experiments_changed("another-run", known) == ([], [])
        assert not reader._connection().in_transaction
