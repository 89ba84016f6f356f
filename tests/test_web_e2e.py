"""End to end: a real offline smoke run with review on, served by a real uvicorn, one candidate
approved and another rejected by clicking in headless Chromium; the archive records both, the
driver applies them and the run goes on to finish."""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from knowledge.archive import Archive
from knowledge.records import Stage
from tests.loop_support import write_config
from tests.web_support import ROOT_ENV, served

playwright = pytest.importorskip("playwright.sync_api", reason="Playwright's python package is not installed")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("chromium") is None,
                                                   reason="Debian's chromium is not installed (apt-get install -y chromium)")]
RUN = "web-e2e"


def _awaiting(run_dir: Path, process: subprocess.Popen, exclude: tuple[str, ...] = (), deadline_s: float = 300) -> str:
    deadline = time.monotonic() + deadline_s
    while True:
        if (run_dir / "archive.sqlite").exists():
            with Archive.open(run_dir / "archive.sqlite", readonly=True) as archive:
                waiting = [e.id for e in archive.experiments(run=RUN)
                           if e.stage is Stage.AWAITING_REVIEW and e.id not in exclude]
            if waiting:
                return waiting[0]
        assert process.poll() is None, "the run ended while a review was expected:\n" + process.stdout.read()
        assert time.monotonic() < deadline, "no candidate came up for review"
        time.sleep(0.3)


def test_approve_and_reject_by_clicking_steer_a_real_run(tmp_path):
    config = write_config(tmp_path, experiments=2, workers=2)
    runs_dir, run_dir = tmp_path / "runs", tmp_path / "runs" / RUN
    run = subprocess.Popen([sys.executable, "-m", "archlab.cli", "run", "--config", str(config), "--offline", "--task",
                            "mqar", "--budget", "smoke", "--review", "--experiments", "2", "--name", RUN],
                           cwd=tmp_path, env=ROOT_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with served(runs_dir) as base, playwright.sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
            page = browser.new_page()
            approved = _awaiting(run_dir, run)
            page.goto(f"{base}/runs/{RUN}")
            page.click(f"a[href='/runs/{RUN}/experiments/{approved}#review']")  # from the dashboard's queue
            page.click("#approve")
            page.wait_for_url(f"**/{approved}?recorded=approve")
            rejected = _awaiting(run_dir, run, exclude=(approved,))
            page.goto(f"{base}/runs/{RUN}/experiments/{rejected}")
            page.fill("#reject-note", "too close to the baseline")
            page.click("#reject")
            page.wait_for_url(f"**/{rejected}?recorded=reject")
            output, _ = run.communicate(timeout=300)
            assert run.returncode == 0, output
            for path in ("/", f"/runs/{RUN}", f"/runs/{RUN}/experiments", f"/runs/{RUN}/tree",
                         f"/runs/{RUN}/experiments/{approved}", f"/runs/{RUN}/compare?a=e0001&b={approved}"):
                with urllib.request.urlopen(base + path, timeout=30) as answer:  # a real archive renders too
                    assert answer.status == 200, path
            page.goto(f"{base}/runs/{RUN}/experiments/{rejected}")
            assert "too close to the baseline" in page.inner_text("#exp-head")
            browser.close()
    finally:
        if run.poll() is None:
            run.kill()
    with Archive.open(run_dir / "archive.sqlite", readonly=True) as archive:
        for exp_id, action in ((approved, "approve"), (rejected, "reject")):
            events = archive.events(experiment_id=exp_id)
            assert [e.message for e in events if e.kind == "review_decision"] == [action]
            assert [e.message for e in events if e.kind == "review_applied"] == [action]
        trained = archive.get_experiment(approved)
        assert trained.stage is Stage.ANALYZED and trained.status  # the run went on: trained and analysed
        refused = archive.get_experiment(rejected)
        assert refused.stage is Stage.REJECTED and "too close to the baseline" in refused.reason
