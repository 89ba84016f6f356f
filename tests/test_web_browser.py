"""The pages in a real headless Chromium (Debian's, driven by Playwright) against a real uvicorn:
hostile text never runs, sorting and reviewing by clicking, and a page of a driven run updating
itself without a reload."""
from __future__ import annotations

import shutil
import time

import pytest

from archlab.runlock import hold_run
from knowledge.archive import Archive
from knowledge.records import Fitness, Stage
from tests.web_support import decisions, served, synthetic_run

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright = pytest.importorskip("playwright.sync_api", reason="Playwright's python package is not installed")
pytestmark = pytest.mark.skipif(shutil.which("chromium") is None,
                                reason="Debian's chromium is not installed (apt-get install -y chromium)")
RUN = "synth"


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    yield page
    context.close()
    assert dialogs == [], f"hostile text ran as script: {dialogs}"


@pytest.fixture
def runs_dir(tmp_path):
    runs = tmp_path / "runs"
    synthetic_run(runs, RUN, proposals=12)
    return runs


def test_hostile_text_never_runs_and_headers_sort_by_clicking(page, runs_dir):
    with served(runs_dir) as base:
        for path in ("/", f"/runs/{RUN}", f"/runs/{RUN}/tree", f"/runs/{RUN}/experiments/e0003",
                     f"/runs/{RUN}/experiments/e0016"):
            page.goto(base + path)
        page.goto(f"{base}/runs/{RUN}/experiments")
        page.click("th[data-sort-key=fitness]")
        values = [float(v) for v in page.eval_on_selector_all(
            "#experiments tbody tr td:nth-child(6)", "cells => cells.map(c => c.dataset.v).filter(v => v !== '')")]
        assert values == sorted(values, reverse=True) and len(values) > 5
        assert "sort=fitness" in page.url
        page.click("th[data-sort-key=fitness]")
        again = [float(v) for v in page.eval_on_selector_all(
            "#experiments tbody tr td:nth-child(6)", "cells => cells.map(c => c.dataset.v).filter(v => v !== '')")]
        assert again == sorted(values)


def test_reviewing_by_clicking_records_the_decision_or_shows_why_not(page, runs_dir):
    with served(runs_dir) as base:
        page.goto(f"{base}/runs/{RUN}/experiments/e0017")
        page.fill("#replace-code", "import os\nos.system('rm -rf /')\n")
        page.fill("#replace-note", "mine")
        page.click("#replace")
        assert "refused by the static screen" in page.inner_text("#review-error")
        assert "line 1" in page.inner_text("#review-error") and decisions(runs_dir / RUN, "e0017") == []
        page.fill("#reject-note", "repeats e0003 <b>really</b>")
        page.click("#reject")
        page.wait_for_url("**/e0017?recorded=reject")
        assert "is recorded in the archive" in page.content()
        assert decisions(runs_dir / RUN, "e0017") == [{"action": "reject", "note": "repeats e0003 <b>really</b>",
                                                       "code": "", "name": ""}]
        assert page.query_selector("#review") is None  # pending: no second decision offered


def test_a_driven_runs_dashboard_updates_itself(page, runs_dir):
    run_dir = runs_dir / RUN
    with hold_run(run_dir, RUN), served(runs_dir) as base:  # this test plays the driver
        page.goto(f"{base}/runs/{RUN}")
        page.evaluate("window.notReloaded = true")
        assert page.query_selector("#live-dot") is not None
        assert "e0016" in page.inner_text("#run-awaiting")
        with Archive.open(run_dir / "archive.sqlite") as archive:
            archive.update_experiment("e0016", stage=Stage.ANALYZED, status="ok", fitness=Fitness(value=0.5))
        deadline = time.monotonic() + 20
        while "e0016" in page.inner_text("#run-awaiting"):
            assert time.monotonic() < deadline, "the dashboard did not update itself"
            page.wait_for_timeout(250)
        assert "+0.5000" in page.inner_text("#run-cards")
        assert page.evaluate("window.notReloaded") is True  # swapped in place, not reloaded
