"""Everything a report shows, gathered from one snapshot of the run into one typed record.

The figures come from the insights layer that the web app shows too, so the report and the pages
agree; the pictures are drawn here once, as SVG strings, and the renderer only places them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from archlab.insights import charts, plots
from archlab.insights.detail import experiment_detail
from archlab.insights.headline import Headline, headline
from archlab.insights.lineage import best_lineages
from archlab.insights.operators import OperatorStats, operator_stats
from archlab.insights.pareto import ParetoFront, pareto_fronts
from archlab.insights.records import ExperimentDetail, LineageNode, RunSummary
from archlab.insights.snapshot import RunSnapshot
from archlab.insights.spend import SpendBreakdown, run_calls, spend_breakdown
from archlab.insights.summary import run_summary
from archlab.insights.yardstick import YardstickFigures, run_yardstick

TOP = 5


@dataclass(frozen=True)
class Plot:
    name: str                     # file stem when written beside a Markdown report
    title: str
    svg: str


@dataclass(frozen=True)
class Report:
    summary: RunSummary
    headline: Headline
    yardstick: YardstickFigures          # rungs, proxies, best vs reference by its interval, the gate
    fronts: tuple[ParetoFront, ...]
    lineages: tuple[LineageNode, ...]     # the best lineages only, in drawing order
    operators: tuple[OperatorStats, ...]
    top: tuple[ExperimentDetail, ...]     # the fittest proposals, best first
    spend: SpendBreakdown
    plots: dict[str, Plot]                # fitness, pareto, lineage, time
    seed: int
    workers: int
    generated_at: float


def top_experiments(snapshot: RunSnapshot, count: int) -> tuple[ExperimentDetail, ...]:
    """The `count` fittest proposals (flagged ones after every plausible one), in full."""
    scored = [e for e in snapshot.proposals if e.fitness is not None]
    scored.sort(key=lambda e: (bool(e.fitness.flagged), -e.fitness.value, e.id))
    return tuple(experiment_detail(snapshot, e.id) for e in scored[:count])


def build_report(snapshot: RunSnapshot, top: int = TOP) -> Report:
    summary = run_summary(snapshot)
    fronts = pareto_fronts(snapshot)
    nodes = best_lineages(snapshot, top)
    spent = spend_breakdown(snapshot, run_calls(snapshot))
    reference = summary.best_reference
    drawn = (
        Plot("fitness", "Fitness over time", plots.fitness_svg(
            summary.fitness, baseline=0.0 if summary.baseline else None,
            best_reference=(reference.name, reference.fitness) if reference else None)),
        Plot("pareto", "Quality against cost", charts.pareto_svg(fronts)),
        Plot("lineage", f"Lineages of the {top} best proposals", plots.lineage_svg(nodes)),
        Plot("time", "Time per experiment", charts.time_svg(spent.experiments)),
    )
    return Report(summary=summary, headline=headline(snapshot, summary), yardstick=run_yardstick(snapshot), fronts=fronts, lineages=tuple(nodes),
                  operators=operator_stats(snapshot), top=top_experiments(snapshot, top), spend=spent,
                  plots={p.name: p for p in drawn}, seed=snapshot.config.seed, workers=snapshot.config.workers,
                  generated_at=time.time())
