"""`archlab report`: the report of a real smoke run holds the archive's numbers and opens in a headless
Chromium with every network request refused, all its plots drawn; the Markdown form with its plots
beside it; and, on a written run, the random-sample mean, operators, LLM spend by role and hostile text."""
from __future__ import annotations

import math
import re
import shutil
import statistics
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from archlab.cli import main
from archlab.insights.headline import NOT_MEASURED
from archlab.insights.pareto import COSTS, front_of
from archlab.insights.snapshot import load_snapshot
from archlab.insights.summary import row_of
from archlab.report.build import build_report
from archlab.report.render import render_html, render_markdown
from knowledge.archive import Archive
from knowledge.records import Experiment, Fitness, Stage
from tests.cli_support import cli
from tests.web_support import HOSTILE, synthetic_run

PLOTS = 4   # fitness over time, quality against cost, lineages, time per experiment
# smoke_run (tests/support/smoke_run.py): the session's real offline run at the smoke budget, the baseline (two
# seeds) and one proposal; read only.


def _seed_mean(exp: Experiment, metric: str) -> float:
    return statistics.fmean(s["metrics"][metric] for s in exp.metrics["seeds"] if s["status"] == "ok")


def _offline_page(browser, path: Path) -> tuple[object, list[str]]:
    """The file opened with every request that is not file:// or data: refused (and noted)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    refused: list[str] = []

    def only_local(route):
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    page.route("**", only_local)
    page.goto(path.as_uri())
    return page, refused


@pytest.mark.slow
def test_the_report_of_a_real_run_holds_the_archives_numbers_and_opens_offline_with_every_plot(smoke_run, tmp_path):
    chromium = shutil.which("chromium")
    playwright = pytest.importorskip("playwright.sync_api", reason="Playwright's python package is not installed")
    out = tmp_path / "report.html"
    done = cli("report", str(smoke_run), "-o", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"written to {out}" in done.stderr and " s" in done.stderr
    with Archive.open(smoke_run / "archive.sqlite", readonly=True) as archive:
        experiments = archive.experiments(run="smoke")
    baseline = experiments[0]
    proposals = [e for e in experiments if e.proposer != "reference"]
    best = max((e for e in proposals if e.fitness and not e.fitness.flagged), key=lambda e: e.fitness.value)
    html = out.read_text()
    assert re.findall(r'(?:src|href)="(?!#|data:)([^"]*)"', html) == []   # nothing to fetch; links within the page
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page, refused = _offline_page(browser, out)
            svgs = page.locator("svg")
            assert svgs.count() == PLOTS
            for index in range(PLOTS):
                box = svgs.nth(index).bounding_box()
                assert svgs.nth(index).is_visible() and box and box["width"] > 100 and box["height"] > 50
            rows = {r["row"]: r for r in page.eval_on_selector_all(
                "#headline-table tbody tr", "rows => rows.map(r => ({...r.dataset}))")}
            assert rows["best found"]["id"] == best.id
            assert float(rows["best found"]["fitness"]) == best.fitness.value
            assert float(rows["best found"]["stderr"]) == best.fitness.stderr
            assert int(rows["best found"]["seeds"]) == best.fitness.seeds
            assert rows["baseline"]["id"] == baseline.id and int(rows["baseline"]["seeds"]) == baseline.fitness.seeds == 2
            assert math.isclose(float(rows["baseline"]["quality"]), _seed_mean(baseline, "accuracy"))
            assert math.isclose(float(rows["best found"]["quality"]), _seed_mean(best, "accuracy"))
            assert rows["random samples (mean)"]["fitness"] == ""
            assert "not measured in this run" in page.inner_text("#headline-table")
            steps = {s["step"]: float(s["seconds"]) for s in page.eval_on_selector_all(
                "#steps-table tbody tr", "rows => rows.map(r => ({...r.dataset}))")}
            for step in ("propose", "code", "evaluate", "train", "analyze"):
                assert math.isclose(steps[step], sum(e.timings.get(step, 0.0) for e in experiments))
            assert "No LLM calls" in page.inner_text("#spend")
            assert page.locator(f"#exp-{best.id} .highlight").count() == 1  # its diff against its parent
            assert refused == []
        finally:
            browser.close()


@pytest.mark.slow
def test_the_markdown_report_links_its_plots_written_beside_it(smoke_run, tmp_path):
    out = tmp_path / "notes" / "smoke.md"
    out.parent.mkdir()
    done = cli("report", str(smoke_run), "-o", str(out), cwd=tmp_path)   # the format follows the suffix
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    plots = sorted((tmp_path / "notes" / "smoke_plots").glob("*.svg"))
    assert [p.stem for p in plots] == ["fitness", "lineage", "pareto", "time"]
    for plot in plots:
        assert ElementTree.parse(plot).getroot().tag.endswith("svg")
        assert f"](smoke_plots/{plot.name})" in text
    with Archive.open(smoke_run / "archive.sqlite", readonly=True) as archive:
        best = max((e for e in archive.experiments(run="smoke") if e.proposer != "reference" and e.fitness),
                   key=lambda e: e.fitness.value)
    assert f"| best found | {best.id} " in text and f"{best.fitness.value:+.4f}" in text
    assert "```diff\n" in text and "## Spend" in text
    bare = tmp_path / "bare.md"
    assert main(["report", str(smoke_run), "-o", str(bare), "--no-plots"]) == 0
    assert "plot left out" in bare.read_text() and not (tmp_path / "bare_plots").exists()


def _with_random_and_mutations(runs: Path) -> Path:
    """The written run of the web tests, plus three fresh random genomes (one failed) and a
    mutation of the baseline that beats everything before it."""
    run_dir = synthetic_run(runs, "synth", proposals=12)
    random = "Fresh random genome from the design space: the neighbourhood is already archived."
    extra = [Experiment(id=f"e{19 + i:04d}", run="synth", name=f"random-{i}", proposer="offline", motivation=random,
                        stage=Stage.ANALYZED if value is not None else Stage.FAILED, status="ok" if value is not None
                        else "crashed", reason="" if value is not None else "crashed: line 3: boom",
                        fitness=Fitness(value=value, stderr=0.01) if value is not None else None)
             for i, value in enumerate((0.01, 0.03, None))]
    extra.append(Experiment(id="e0022", run="synth", name="mutant", proposer="offline", parent_id="e0001",
                            motivation="Point mutation of e0001 (gated_delta_rule, fitness +0.0000): 1 gene changed.",
                            stage=Stage.ANALYZED, status="ok", fitness=Fitness(value=0.05, stderr=0.01, seeds=2)))
    with Archive.open(run_dir / "archive.sqlite") as archive:
        archive.add_experiments(extra)
    return run_dir


def test_random_samples_operators_and_llm_spend_come_from_the_archive(tmp_path):
    report = build_report(load_snapshot(_with_random_and_mutations(tmp_path / "runs")))
    rows = {row.label: row for row in report.headline.rows}
    assert rows["best found"].id == "e0022" and rows["best reference"].id == "e0002"
    sampled = rows["random samples (mean)"]
    assert math.isclose(sampled.fitness, 0.02) and math.isclose(sampled.stderr, 0.01) and sampled.seeds == 2
    assert sampled.note == "2 of 3 random genomes scored; the other 1 (failed or implausible) are left out of the mean"
    margins = {m.against: m for m in report.headline.margins}
    assert math.isclose(margins["baseline"].difference, 0.05) and margins["baseline"].stderr == 0.01
    stats = {(o.proposer, o.operator): o for o in report.operators}
    assert (stats[("offline", "random")].proposals, stats[("offline", "random")].scored) == (3, 2)
    mutate = stats[("offline", "mutate")]
    assert (mutate.proposals, mutate.beat_parent, mutate.new_best) == (1, 1, 1)
    assert math.isclose(mutate.mean_gain, 0.05)
    (role,) = report.spend.roles
    assert (role.role, role.calls, role.tokens, role.usd) == ("researcher", 1, 30, 0.002)
    tree = {n.id: n for n in report.lineages}
    assert tree["e0022"].parent_id == "e0001" and tree["e0001"].depth == 0 and "e0021" not in tree  # failed: no fitness
    html = render_html(report)
    assert 'data-role="researcher"' in html and "2 of 3 random genomes scored" in html


def test_hostile_text_is_escaped_in_both_formats(tmp_path):
    report = build_report(load_snapshot(synthetic_run(tmp_path / "runs", "synth", proposals=12)))
    html = render_html(report)
    assert HOSTILE not in html and "&lt;script&gt;" in html and "<script" not in html
    markdown = render_markdown(report, None)
    outside_fences = re.sub(r"^(`{3,})[^\n]*\n.*?^\1$", "", markdown, flags=re.S | re.M)  # code is shown as text
    assert HOSTILE not in outside_fences and r"\<script>" in outside_fences and HOSTILE in markdown
    assert "not measured in this run" in markdown and NOT_MEASURED.split(":")[0] in html


def test_the_pareto_front_keeps_only_designs_nothing_beats_at_their_cost(tmp_path):
    run_dir = synthetic_run(tmp_path / "runs", "synth", proposals=12)
    rows = [row_of(e) for e in load_snapshot(run_dir).experiments if e.fitness is not None]
    for cost in COSTS:
        front = front_of(rows, cost)
        better = (lambda a, b: a <= b) if cost.lower_is_better else (lambda a, b: a >= b)
        for point in front.points:
            dominated = any(better(o.cost, point.cost) and o.fitness >= point.fitness
                            and (o.cost != point.cost or o.fitness > point.fitness) for o in front.points)
            twin_first = any(o.cost == point.cost and o.fitness == point.fitness and o.id < point.id
                             for o in front.points)
            assert point.on_front == (not dominated and not twin_first), point
        assert front.front, cost


def test_usage_errors_say_what_to_change(tmp_path, capsys):
    runs = str(tmp_path / "runs")
    synthetic_run(tmp_path / "runs", "synth", proposals=2)
    assert main(["report", "synth", "--runs-dir", runs, "--no-plots"]) == 2
    assert "--no-plots is for --format md" in capsys.readouterr().err
    assert main(["report", "nope", "--runs-dir", runs]) == 2
    error = capsys.readouterr().err
    assert "no run 'nope'" in error and "synth" in error
    assert main(["report", "synth", "--runs-dir", runs, "-o", str(tmp_path)]) == 2
    assert "is a directory; give a file name with -o" in capsys.readouterr().err
