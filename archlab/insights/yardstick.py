"""What the run says about its own yardstick, in figures and plain words: the one data function
behind `archlab status`, `archlab report` and the web app's yardstick panel.

Per pair of ladder rungs, Kendall's tau of the fitness of the candidates that ran on both (does
the cheap rung predict the expensive one?); per zero-cost proxy, Spearman's rho with trained
fitness over the run's evaluated candidates, with a verdict; the best proposal against the best
reference with seeds and intervals ("beats" only when evaluator.stats.beats says so); and the
proxy gate's standing. The arithmetic is agents.yardstick's and agents.proxy_gate's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from agents.config import ProxyGate, RunConfig
from agents.proxy_gate import decide
from agents.yardstick import archive_proxy_correlations, best_against_references, rung_correlations
from archlab.insights.snapshot import RunSnapshot
from evaluator.stats import Interval
from knowledge.records import Experiment

WEAK_RHO = 0.3      # below this (in size) a proxy or a rung is taken as not predictive
AGREEING_TAU = 0.6  # rungs that agree at least this much rank candidates alike


@dataclass(frozen=True)
class RungAgreement:
    low: str                      # the cheaper rung's budget
    high: str
    candidates: int               # candidates measured on both
    kendall: float | None
    verdict: str


@dataclass(frozen=True)
class ProxyStanding:
    name: str
    candidates: int               # evaluated candidates with the proxy and a plausible fitness
    spearman: float | None
    kendall: float | None
    verdict: str


@dataclass(frozen=True)
class IntervalFigure:
    mean: float
    stderr: float
    seeds: int
    low: float | None             # the 95% interval; None with one seed (no spread, no interval)
    high: float | None
    text: str


@dataclass(frozen=True)
class BestVersusReference:
    best_id: str
    best_name: str
    reference_id: str
    reference_name: str
    best: IntervalFigure
    reference: IntervalFigure
    difference: IntervalFigure    # best minus reference
    beats: bool
    why: str


@dataclass(frozen=True)
class GateStanding:
    enabled: bool
    active: bool                  # would the next proposal be gated
    proxy: str
    threshold: float | None
    why: str
    skipped: tuple[str, ...]      # experiments the gate kept from training


@dataclass(frozen=True)
class YardstickFigures:
    rungs: tuple[RungAgreement, ...]
    proxies: tuple[ProxyStanding, ...]
    best: BestVersusReference | None
    gate: GateStanding


def proxy_verdict(rho: float | None, candidates: int, gate: ProxyGate) -> str:
    """How predictive a proxy has been, in words the gate's own thresholds agree with."""
    if rho is None:
        return "not measurable yet (fewer than 3 candidates, or a constant side)"
    if rho >= gate.min_rho:
        if candidates >= gate.min_candidates:
            return "predictive enough to gate"
        return (f"promising, but {candidates} candidates are fewer than the {gate.min_candidates} "
                "the gate needs")
    if rho >= WEAK_RHO:
        return f"weak: below the gate's minimum rho {gate.min_rho:g}"
    if rho <= -WEAK_RHO:
        return "inverse: a higher score went with a worse candidate; not usable as a gate"
    return "not predictive"


def rung_verdict(tau: float | None) -> str:
    if tau is None:
        return "not measurable yet (fewer than 3 candidates on both)"
    if tau >= AGREEING_TAU:
        return "the cheap rung predicts the expensive one"
    if tau >= WEAK_RHO:
        return "partly: the cheap rung orders the candidates only roughly"
    return "the cheap rung does not predict the expensive one"


def _figure(value: Interval) -> IntervalFigure:
    finite = value.seeds > 1 and math.isfinite(value.half_width)
    return IntervalFigure(value.mean, value.stderr, value.seeds, value.low if finite else None,
                          value.high if finite else None, value.describe())


def yardstick_figures(experiments: Sequence[Experiment], config: RunConfig) -> YardstickFigures:
    """Everything the report, the web app and `archlab status` show about the yardstick."""
    ladder = [rung.budget for rung in config.yardstick.ladder]
    rungs = rung_correlations(experiments, [config.budget, *ladder], config.budget) if ladder else {}
    agreements = tuple(RungAgreement(low, high, f["candidates"], f["kendall"], rung_verdict(f["kendall"]))
                       for (low, high), f in ((pair.split(" -> "), f) for pair, f in rungs.items()))
    gate_config = config.yardstick.proxy_gate
    proxies = tuple(ProxyStanding(name, f["candidates"], f["spearman"], f["kendall"],
                                  proxy_verdict(f["spearman"], f["candidates"], gate_config))
                    for name, f in archive_proxy_correlations(experiments).items())
    versus = best_against_references(experiments)
    best = None if versus is None else BestVersusReference(
        versus.best.id, versus.best.name, versus.reference.id, versus.reference.name,
        _figure(versus.best_interval), _figure(versus.reference_interval), _figure(versus.verdict.difference),
        versus.verdict.beats, versus.verdict.reason)
    decision = decide(gate_config, experiments)
    skipped = tuple(e.id for e in experiments if e.status == "skipped")
    gate = GateStanding(gate_config.enabled, decision.active, decision.proxy, decision.threshold, decision.why,
                        skipped)
    return YardstickFigures(rungs=agreements, proxies=proxies, best=best, gate=gate)


def status_lines(figures: YardstickFigures) -> list[str]:
    """The figures as `archlab status` prints them, one fact a line."""
    lines = []
    if figures.best:
        b = figures.best
        lines.append(f"best vs {b.reference_name}: {b.best.text} vs {b.reference.text}: {b.why}")
    for r in figures.rungs:
        tau = "-" if r.kendall is None else f"{r.kendall:+.2f}"
        lines.append(f"rungs {r.low} -> {r.high}: {r.candidates} candidates on both, Kendall tau {tau} ({r.verdict})")
    for p in figures.proxies:
        rho = "-" if p.spearman is None else f"{p.spearman:+.2f}"
        lines.append(f"proxy {p.name}: Spearman rho {rho} with fitness over {p.candidates} candidates ({p.verdict})")
    if figures.gate.enabled or figures.gate.skipped:
        lines.append(f"proxy gate: {figures.gate.why}; {len(figures.gate.skipped)} skipped so far")
    return lines


def run_yardstick(snapshot: RunSnapshot) -> YardstickFigures:
    """The snapshot's figures, worked out once per version of the run."""
    return snapshot.memo.of_run("yardstick", lambda: yardstick_figures(snapshot.experiments, snapshot.config))
