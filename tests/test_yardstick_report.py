"""The yardstick's figures where a person reads them, and the proxy gate's decision.

The report (HTML and Markdown), the web app and `archlab status` show one set of figures
(archlab.insights.yardstick): rank agreement between rungs, each proxy's rho with fitness and a
verdict, the best proposal against the best reference by its interval, and the gate's standing.
The gate (agents.proxy_gate) opens only when the run's own archive justifies it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agents.config import ProxyGate, Rung, RunConfig, YardstickConfig
from agents.proxy_gate import decide
from archlab.insights.snapshot import load_snapshot
from archlab.insights.summary import run_summary
from archlab.insights.yardstick import proxy_verdict, yardstick_figures
from archlab.report.build import build_report
from archlab.report.render import render_html, render_markdown
from archlab.web.app import create_app
from evaluator.stats import quantile
from knowledge.archive import Archive
from knowledge.records import Experiment, Fitness, Stage
from tests.cli_support import cli

RUN = "ys"


def _exp(i: int, fitness: float | None, snip: float | None, proposer: str = "offline", status: str = "ok",
         rungs: dict | None = None, seeds: int = 2) -> Experiment:
    metrics = {"metrics": {"proxies": {} if snip is None else {"snip": snip, "grad_norm": 1.0 - snip}}}
    return Experiment(id=f"e{i:04d}", run=RUN, name=f"design-{i}", proposer=proposer,
                      stage=Stage.ANALYZED, status=status, reason="" if status == "ok" else f"{status}: why",
                      fitness=None if fitness is None else Fitness(value=fitness, stderr=0.01, seeds=seeds),
                      metrics={**metrics, **({"rungs": rungs} if rungs else {})})


def _ranked(n: int, start: int = 1) -> list[Experiment]:
    """n trained proposals whose snip score orders them exactly as their fitness does."""
    return [_exp(start + k, k / 10, float(k)) for k in range(n)]


GATE = ProxyGate(enabled=True, proxy="snip", min_rho=0.5, min_candidates=5, skip_quantile=0.25)


def test_the_gate_stays_off_unless_enabled_and_justified_and_says_why():
    off = decide(ProxyGate(), _ranked(30))
    assert not off.active and off.gate is None and "enabled = false" in off.why
    few = decide(GATE, _ranked(4))
    assert not few.active and "4 trained candidates" in few.why and "min_candidates = 5" in few.why
    shuffled = [_exp(k + 1, k / 10, float((k * 7) % 10)) for k in range(10)]  # snip unrelated to fitness
    weak = decide(GATE, shuffled)
    assert not weak.active and "below min_rho = 0.5" in weak.why and weak.rho is not None and weak.rho < 0.5


def test_the_open_gate_skips_below_the_quantile_of_every_recorded_score():
    trained = _ranked(8)
    skipped = [_exp(20 + k, None, -5.0, status="skipped") for k in range(4)]  # recorded scores, no fitness
    decision = decide(GATE, [*trained, *skipped, _exp(30, None, None, status="crashed")])
    scores = [float(k) for k in range(8)] + [-5.0] * 4
    assert decision.active and decision.rho == pytest.approx(1.0) and decision.measured == 8
    assert decision.scored == 12 and decision.threshold == pytest.approx(quantile(scores, 0.25))
    assert decision.gate == ("snip", decision.threshold)
    reason = decision.skip_reason(-6.0)
    assert reason.startswith("skipped by the snip proxy: -6 below the 25% quantile") and "rho +1.00" in reason
    flagged = [e.model_copy(update={"fitness": e.fitness.model_copy(update={"flagged": "implausible"})})
               for e in trained]
    assert not decide(GATE, flagged).active  # implausible fitness is no evidence


def test_quantile_interpolates_and_refuses_nonsense():
    assert quantile([4.0, 1.0, 3.0, 2.0], 0.5) == pytest.approx(2.5)
    assert quantile([1.0], 0.25) == 1.0
    with pytest.raises(ValueError, match="0 <= q <= 1"):
        quantile([], 0.5)


def test_verdicts_follow_the_gates_thresholds():
    assert proxy_verdict(0.7, 30, GATE) == "predictive enough to gate"
    assert proxy_verdict(0.7, 4, GATE).startswith("promising, but 4 candidates")
    assert proxy_verdict(0.35, 30, GATE).startswith("weak")
    assert proxy_verdict(0.05, 30, GATE) == "not predictive"
    assert proxy_verdict(-0.6, 30, GATE).startswith("inverse")
    assert proxy_verdict(None, 2, GATE).startswith("not measurable")


def _experiments() -> list[Experiment]:
    gpu = lambda v: {"gpu": {"fitness": {"value": v}}}  # noqa: E731
    return [
        _exp(1, 0.0, 0.5, proposer="reference", rungs=gpu(0.0)),
        _exp(2, 0.1, 1.5, proposer="reference", rungs=gpu(0.2)),
        *[_exp(3 + k, 0.2 + k / 10, 2.0 + k, rungs=gpu(0.3 + k / 10) if k < 3 else None) for k in range(6)],
        _exp(9, None, 0.1, status="skipped"),
        _exp(10, None, None, status="crashed"),
    ]


def _config(**gate) -> RunConfig:
    return RunConfig(name=RUN, budget="smoke", experiments=8, yardstick=YardstickConfig(
        ladder=[Rung(budget="gpu")], proxy_gate=ProxyGate(**gate)))


def test_figures_hold_rungs_proxies_the_honest_best_and_the_gate():
    figures = yardstick_figures(_experiments(), _config(enabled=True, min_candidates=20))
    (rung,) = figures.rungs
    assert (rung.low, rung.high, rung.candidates, rung.kendall) == ("smoke", "gpu", 5, pytest.approx(1.0))
    assert rung.verdict == "the cheap rung predicts the expensive one"
    snip = next(p for p in figures.proxies if p.name == "snip")
    assert snip.candidates == 8 and snip.spearman == pytest.approx(1.0)  # the skipped one has no fitness
    assert snip.verdict.startswith("promising, but 8 candidates")
    assert figures.best.best_id == "e0008" and figures.best.reference_id == "e0002" and figures.best.beats
    assert figures.best.difference.low is not None and figures.best.difference.low > 0
    assert not figures.gate.active and figures.gate.skipped == ("e0009",) and "fewer than" in figures.gate.why
    one_seed = yardstick_figures([*_experiments()[:2], _exp(3, 0.9, 1.0, seeds=1)], _config())
    assert not one_seed.best.beats and one_seed.best.best.low is None and "2 or more seeds" in one_seed.best.why


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    folder = runs / RUN
    folder.mkdir()
    (folder / "config.json").write_text(_config(enabled=True, min_candidates=20).model_dump_json(indent=2))
    with Archive.open(folder / "archive.sqlite") as archive:
        archive.add_experiments(_experiments())
    return folder


def test_the_report_shows_the_figures_and_skips_are_no_failures(run_dir: Path):
    snapshot = load_snapshot(run_dir)
    report = build_report(snapshot)
    html, markdown = render_html(report), render_markdown(report, None)
    for text in (html, markdown.replace("\\", "")):  # Markdown escapes underscores in table cells
        assert "Yardstick" in text and "smoke → gpu" in text and "the cheap rung predicts the expensive one" in text
        assert "snip" in text and "promising, but 8 candidates" in text and "fewer than min_candidates = 20" in text
        assert "e0009" in text  # named as not trained
    assert 'data-beats="true"' in html and "**Beats it**" in markdown
    failures = run_summary(snapshot).failures
    assert [g.outcome for g in failures] == ["crashed"]  # the skipped proposal is not a failure
    assert ("skipped", 1) in run_summary(snapshot).outcomes


def test_status_and_the_web_app_show_the_same_figures(run_dir: Path):
    shown = cli("status", str(run_dir), cwd=run_dir)
    assert shown.returncode == 0, shown.stderr
    assert "rungs smoke -> gpu: 5 candidates on both, Kendall tau +1.00" in shown.stdout
    assert "proxy snip: Spearman rho +1.00 with fitness over 8 candidates (promising" in shown.stdout
    assert "proxy gate: the gate stayed off" in shown.stdout and "1 skipped so far" in shown.stdout
    as_json = json.loads(cli("status", str(run_dir), "--json", cwd=run_dir).stdout)["yardstick"]
    client = TestClient(create_app(run_dir.parent), base_url="http://localhost")
    assert client.get(f"/api/runs/{RUN}/yardstick").json() == as_json
    page = client.get(f"/runs/{RUN}").text
    assert 'id="run-yardstick"' in page and "smoke → gpu" in page and "promising, but 8 candidates" in page
