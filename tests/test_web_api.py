"""The JSON API: the pages' data, and review decisions through `archlab review`'s own path
(checked, screened, recorded once; the CLI sees them)."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from archlab.web.app import create_app
from tests.cli_support import cli
from tests.loop_candidates import RUNNING_MAX
from tests.web_support import HOSTILE, decisions, synthetic_run

RUN = "synth"


@pytest.fixture
def runs_dir(tmp_path):
    runs = tmp_path / "runs"
    synthetic_run(runs, RUN, proposals=12)
    return runs


@pytest.fixture
def client(runs_dir):
    return TestClient(create_app(runs_dir), base_url="http://localhost")


def test_the_read_api_serves_the_pages_data(client):
    [listing] = client.get("/api/runs").json()
    assert listing["name"] == RUN and listing["state"] == "stopped" and listing["planned"] == 17
    summary = client.get(f"/api/runs/{RUN}").json()
    assert summary["progress"]["done"] == 13 and [r["id"] for r in summary["progress"]["awaiting"]] == ["e0016", "e0017"]
    assert summary["best_reference"]["name"] == "softmax_attention" and summary["baseline"]["id"] == "e0001"
    assert {g["outcome"] for g in summary["failures"]} >= {"invalid", "leaky", "crashed", "rejected"}
    assert all(p["best_so_far"] is None or p["best_so_far"] >= (p["fitness"] or -1) for p in summary["fitness"])
    rows = client.get(f"/api/runs/{RUN}/experiments", params={"sort": "params", "order": "desc",
                                                              "references": "false"}).json()
    params = [r["params"] for r in rows if r["params"] is not None]
    assert params == sorted(params, reverse=True) and not any(r["reference"] for r in rows)
    tree = client.get(f"/api/runs/{RUN}/tree").json()
    assert len(tree) == 18 and {n["id"] for n in tree if n["depth"] == 0} == {"e0001", "e0002"}
    assert "version" in client.get(f"/api/runs/{RUN}/version").json()


def test_an_experiment_in_full_with_nan_as_null(client):
    diverged = client.get(f"/api/runs/{RUN}/experiments/e0010").json()  # status diverged: NaN in its loss curve
    assert diverged["row"]["outcome"] == "diverged" and diverged["loss_curve"][-1][1] is None
    first = client.get(f"/api/runs/{RUN}/experiments/e0003").json()
    assert first["calls"][0]["response"] == f"answer {HOSTILE}"  # JSON carries the text as written
    assert first["diff"].startswith("--- e0001/candidate.py") and first["checks"][1]["name"] == "causality"
    compared = client.get(f"/api/runs/{RUN}/compare", params={"a": "e0003", "b": "e0004"}).json()
    assert compared["diff"] and compared["metrics"][0][0] == "accuracy"
    assert client.get(f"/api/runs/{RUN}/experiments/nope").status_code == 404
    assert client.get(f"/api/runs/{RUN}/compare", params={"a": "e0003"}).status_code == 400


def post(client, exp, **decision):
    return client.post(f"/api/runs/{RUN}/experiments/{exp}/review", json=decision)


def test_approve_is_recorded_once_as_archlab_review_records_it(client, runs_dir, tmp_path):
    answer = post(client, "e0016", action="approve")
    assert answer.status_code == 200 and answer.json()["message"] == "e0016: approve recorded; the run applies it next"
    assert decisions(runs_dir / RUN, "e0016") == [{"action": "approve", "note": "", "code": "", "name": ""}]
    again = post(client, "e0016", action="reject", note="changed my mind")
    assert again.status_code == 409 and "already has a decision (approve)" in again.json()["error"]
    by_cli = cli("review", str(runs_dir / RUN), "e0016", "--reject", "too late", cwd=tmp_path)
    assert by_cli.returncode == 2 and "already has a decision" in by_cli.stderr  # the CLI shares the check
    assert len(decisions(runs_dir / RUN, "e0016")) == 1
    done = post(client, "e0003", action="approve")
    assert done.status_code == 409 and "e0003 is not awaiting review (waiting: e0016, e0017)" in done.json()["error"]


@pytest.mark.parametrize("decision, status, message", [
    ({"action": "reject", "note": "  "}, 400, "a rejection needs a note saying why"),
    ({"action": "idea"}, 400, "an idea needs its text"),
    ({"action": "idea", "note": "state_size=2"}, 400, "unknown gene 'state_size'"),
    ({"action": "replace", "code": ""}, 400, "the code is empty"),
    ({"action": "replace", "code": "import os\nos.system('x')\n", "note": "mine"}, 400,
     "refused by the static screen (fix it and decide again; nothing was recorded):\nline 1:"),
    ({"action": "replace", "code": RUNNING_MAX, "name": "bad name!"}, 400, "use letters, digits"),
    ({"action": "explode"}, 400, "action: must be one of"),
    ({"action": "approve", "extra": 1}, 400, "extra: is not a known setting"),
])
def test_bad_decisions_are_refused_with_what_to_fix_and_nothing_recorded(client, runs_dir, decision, status, message):
    answer = post(client, "e0017", **decision)
    assert answer.status_code == status and message in answer.json()["error"], answer.json()
    assert decisions(runs_dir / RUN, "e0017") == []


def test_a_replacement_is_screened_then_recorded_with_its_docstring(client, runs_dir):
    answer = post(client, "e0017", action="replace", code=RUNNING_MAX)
    assert answer.status_code == 200
    [recorded] = decisions(runs_dir / RUN, "e0017")
    assert recorded["code"] == RUNNING_MAX and recorded["name"] == "e0017-person"
    assert recorded["note"].startswith("Running maximum of projected features")


def test_an_offline_idea_without_gene_settings_comes_back_with_a_note(client, runs_dir):
    answer = post(client, "e0017", action="idea", note="think about recall")
    assert answer.status_code == 200 and "only re-draws the proposal" in answer.json()["note"]


def test_malformed_bodies_are_400(client):
    url = f"/api/runs/{RUN}/experiments/e0017/review"
    broken = client.post(url, content="{not json", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400 and "bad decision" in broken.json()["error"]
    huge = client.post(url, content="x" * (600 * 1024), headers={"Content-Type": "application/json"})
    assert huge.status_code == 413
