"""`archlab serve`'s pages through the ASGI test client, on a run written through the archive's
API with every kind of outcome and hostile text wherever an LLM or a candidate writes."""
from __future__ import annotations

import html
import re
import shutil

import pytest
from fastapi.testclient import TestClient

from archlab.insights.highlight import stylesheet
from archlab.web.app import HERE, create_app
from tests.web_support import synthetic_run

RUN = "synth"


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    runs = tmp_path_factory.mktemp("web") / "runs"
    synthetic_run(runs, RUN)
    return runs


@pytest.fixture(scope="module")
def client(runs_dir):
    return TestClient(create_app(runs_dir), base_url="http://localhost")


def assert_escaped(html: str) -> None:
    """No tag an LLM or a candidate wrote survives as markup; its text is shown escaped."""
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "onerror=alert" not in html or "&lt;img src=x onerror=alert(1)&gt;" in html


PAGES = ["/", f"/runs/{RUN}", f"/runs/{RUN}/experiments", f"/runs/{RUN}/experiments/e0003",
         f"/runs/{RUN}/experiments/e0034", f"/runs/{RUN}/experiments/e0010", f"/runs/{RUN}/tree",
         f"/runs/{RUN}/compare?a=e0003&b=e0004", f"/runs/{RUN}/compare"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_and_escapes_hostile_text(client, path):
    page = client.get(path)
    assert page.status_code == 200, page.text[:500]
    assert page.headers["content-type"].startswith("text/html")
    assert_escaped(page.text)
    assert "Content-Security-Policy" in page.headers and "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_the_dashboard_shows_progress_queue_failures_and_references(client):
    page = client.get(f"/runs/{RUN}").text
    assert "Awaiting your review" in page and "e0034" in page and "e0035" in page
    assert "of 35 proposals finished" in page
    assert "softmax_attention" in page and "best reference" in page   # the best reference, drawn and named
    # failures grouped by outcome with the first reason; numbers do not split a group
    assert re.search(r'o-invalid">invalid</span></td><td class="num">4<', page)
    assert "rejected in review: repeats e0003" in page
    assert "<svg" in page and 'href="/runs/synth/experiments/e0003"' in page  # fitness dots open experiments


def test_the_experiments_table_filters_and_sorts(client):
    page = client.get(f"/runs/{RUN}/experiments", params={"outcome": "ok", "sort": "fitness", "references": "false"})
    assert page.status_code == 200
    rows = re.findall(r'<tr>\s*<td data-v="(e\d+)"', page.text)
    fitness = [float(v) for v in re.findall(r'class="num" data-v="(-?[\d.e-]+)"><span class="fit', page.text)]
    assert rows and "e0001" not in rows and fitness == sorted(fitness, reverse=True)
    assert "e0006" not in rows and "e0004" in rows  # e0006 is invalid: filtered out
    leaky = client.get(f"/runs/{RUN}/experiments", params={"outcome": "leaky"}).text
    assert 'data-v="e0007"' in leaky and 'data-v="e0003"' not in leaky
    named = client.get(f"/runs/{RUN}/experiments", params={"q": "design-1"}).text
    assert 'data-v="e0004"' in named and 'data-v="e0005"' not in named


@pytest.mark.parametrize("params, message", [
    ({"sort": "colour"}, "cannot sort by 'colour'; choose one of: id, name"),
    ({"outcome": "exploded"}, "outcome exploded does not occur in this run; choose from"),
    ({"min_fitness": "high"}, "min_fitness: Input should be a valid number"),
    ({"order": "sideways"}, "order: String should match pattern"),
])
def test_bad_table_queries_are_400_with_what_to_change(client, params, message):
    page = client.get(f"/runs/{RUN}/experiments", params=params)
    assert page.status_code == 400 and message in html.unescape(page.text) and "Traceback" not in page.text


def test_an_experiment_page_has_everything_a_reviewer_reads(client):
    page = client.get(f"/runs/{RUN}/experiments/e0003").text
    for part in ("motivation 0: try a wider state", "plan 0", "Analysis", "summary 0", "Training loss",
                 "Latency against length", "accuracy_by_length.32", "Checks", "causality", "LLM calls",
                 "researcher", "openai/test", "propose &lt;script&gt;", "answer &lt;script&gt;", "Events",
                 "eval-seed0/eval.json", "diff against the parent e0001"):
        assert part in page, part
    assert '<span class="k">import</span>' in page or 'class="kn">import' in page  # highlighted by Pygments
    leaky = client.get(f"/runs/{RUN}/experiments/e0007").text
    assert "output at t=3 changes when x[t=9] changes" in leaky and "Why it failed" in leaky


def test_an_awaiting_experiment_offers_the_review_form_with_a_csrf_token(client):
    page = client.get(f"/runs/{RUN}/experiments/e0034").text
    assert "Review this candidate" in page
    assert len(re.findall(r'name="csrf_token" value="[0-9a-f]{64}"', page)) == 4
    done = client.get(f"/runs/{RUN}/experiments/e0003").text
    assert "Review this candidate" not in done


def test_the_lineage_shows_every_experiment_failed_and_rejected_included(client):
    page = client.get(f"/runs/{RUN}/tree").text
    listed = set(re.findall(r'<a class="mono" href="/runs/synth/experiments/(e\d+)">', page))
    assert listed == {f"e{i:04d}" for i in range(1, 37)}
    assert "o-rejected" in page and "o-crashed" in page
    assert page.count('xlink:href="/runs/synth/experiments/') >= 30  # nodes open their experiment


def test_compare_shows_metrics_side_by_side_and_the_diff(client):
    page = client.get(f"/runs/{RUN}/compare", params={"a": "e0003", "b": "e0006"}).text
    assert "b − a" in page and "parameters" in page and "variant 3" in page
    missing = client.get(f"/runs/{RUN}/compare", params={"a": "e0003", "b": "e9999"})
    assert missing.status_code == 404 and "no experiment 'e9999'" in html.unescape(missing.text)


def test_unknown_runs_experiments_and_routes_are_404_with_directions(client):
    run = client.get("/runs/nope")
    assert run.status_code == 404 and "no run 'nope'" in html.unescape(run.text) and "synth" in run.text
    exp = client.get(f"/runs/{RUN}/experiments/e9999")
    assert exp.status_code == 404 and "listed at /runs/synth/experiments" in exp.text
    route = client.get("/nowhere")
    assert route.status_code == 404 and "the runs are listed at /" in route.text
    assert client.post("/runs/synth").status_code == 405


def test_a_bug_is_a_clean_500_page(runs_dir, monkeypatch):
    from archlab.web.routes import pages

    def broken(snapshot):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(pages, "run_summary", broken)
    client = TestClient(create_app(runs_dir), base_url="http://localhost", raise_server_exceptions=False)
    page = client.get(f"/runs/{RUN}")
    assert page.status_code == 500 and "internal error" in page.text
    assert "secret internals" not in page.text and "Traceback" not in page.text


def test_a_run_without_an_archive_yet_says_so(runs_dir, client):
    fresh = runs_dir / "starting"
    fresh.mkdir()
    shutil.copy(runs_dir / RUN / "config.json", fresh / "config.json")
    page = client.get("/runs/starting")
    assert page.status_code == 409 and "has no archive yet" in page.text
    assert client.get("/").status_code == 200
    shutil.rmtree(fresh)


def test_the_shipped_pygments_stylesheet_matches_the_highlighter():
    shipped = (HERE / "static" / "pygments.css").read_text()
    assert stylesheet() in shipped
