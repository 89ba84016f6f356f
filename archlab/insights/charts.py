"""The report's own pictures, drawn like `plots` (inline SVG, one lock, `$` escaped): quality
against each cost with its Pareto front, and each experiment's time split into training and the
rest."""
from __future__ import annotations

from typing import Sequence

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from archlab.insights.format import number
from archlab.insights.pareto import ParetoFront
from archlab.insights.plots import _DRAWING, BASE, BEST, MUTED, OK, REF, STYLE, _plain, _svg
from archlab.insights.spend import ExperimentTime

FRONT_LABELS = 8   # per panel: more labels than this overlap
SEPARATED = 120   # up to this many experiments, a white line between neighbours tells them apart
LOG_SPAN = 20.0    # a cost spread over less than this factor reads better on a linear axis


def pareto_svg(fronts: Sequence[ParetoFront]) -> str:
    """One panel per cost: every scored design (references in purple), the front as an orange step
    line through its members, the better direction of the cost named on its axis."""
    with _DRAWING, matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(4.2 * max(1, len(fronts)), 3.4), dpi=72, layout="constrained")
        for index, front in enumerate(fronts):
            axes = figure.add_subplot(1, len(fronts), index + 1)
            cost = front.cost
            axes.set_xlabel(f"{cost.label} ({'lower' if cost.lower_is_better else 'higher'} is better)")
            if index == 0:
                axes.set_ylabel("fitness (vs baseline)")
            if not front.points:
                axes.text(0.5, 0.5, "not measured", transform=axes.transAxes, ha="center", color=MUTED)
                continue
            axes.axhline(0.0, color=BASE, linewidth=0.8, linestyle="--")
            for reference, colour, label in ((False, OK, "proposal"), (True, REF, "reference")):
                members = [p for p in front.points if p.reference == reference]
                if members:
                    axes.scatter([p.cost for p in members], [p.fitness for p in members], s=20, color=colour,
                                 alpha=0.75, zorder=3, label=label)
            line = sorted(front.front, key=lambda p: p.cost)
            axes.step([p.cost for p in line], [p.fitness for p in line], color=BEST, linewidth=1.6, zorder=2,
                      where="post" if cost.lower_is_better else "pre", label="Pareto front")
            axes.scatter([p.cost for p in line], [p.fitness for p in line], s=44, facecolors="none",
                         edgecolors=BEST, linewidths=1.4, zorder=4)
            for point in sorted(front.front, key=lambda p: -p.fitness)[:FRONT_LABELS]:
                axes.annotate(_plain(point.name if point.reference else point.id), (point.cost, point.fitness),
                              xytext=(4, 3), textcoords="offset points", fontsize=7, color="#333")
            low, high = min(p.cost for p in front.points), max(p.cost for p in front.points)
            if cost.log_scale and low > 0 and high / low >= LOG_SPAN:
                axes.set_xscale("log")
                axes.xaxis.set_minor_formatter(FuncFormatter(lambda value, _: ""))
            else:
                axes.xaxis.set_major_locator(MaxNLocator(nbins=4))
            axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: number(value, 3)))
            if index == 0:
                axes.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize=8, ncols=3)
        return _svg(figure)


def time_svg(times: Sequence[ExperimentTime]) -> str:
    """Seconds per experiment (creation order), stacked: training, then everything else
    (checks, proposing, coding, analysing, the sandbox's start)."""
    with _DRAWING, matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(12.0, 3.0), dpi=72, layout="constrained")
        axes = figure.add_subplot()
        if not times:
            axes.text(0.5, 0.5, "no step timings recorded", transform=axes.transAxes, ha="center", color=MUTED)
            return _svg(figure)
        axes.set_axisbelow(True)
        # stairs, not bars: two filled paths whatever the number of experiments (bars of 1,000
        # experiments are 2,000 patches and take seconds to draw)
        edges = [index - 0.5 for index in range(len(times) + 1)]
        train = [t.train_s for t in times]
        axes.stairs(train, edges, fill=True, color=OK, label="training")
        axes.stairs([t.train_s + t.other_s for t in times], edges, baseline=train, fill=True, color=MUTED,
                    label="everything else")
        if len(times) <= SEPARATED:
            tops = [t.train_s + t.other_s for t in times]
            axes.vlines(edges[1:-1], 0, [max(a, b) for a, b in zip(tops, tops[1:])], colors="white", linewidths=0.8)
        step = max(1, len(times) // 40)  # at most about 40 id labels
        axes.set_xticks(range(0, len(times), step), [t.id for t in times][::step], rotation=90, fontsize=7)
        axes.set_xlim(-0.5, len(times) - 0.5)
        axes.set_ylim(bottom=0)
        axes.set_ylabel("seconds")
        axes.grid(axis="x", visible=False)
        axes.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize=8, ncols=2)
        return _svg(figure)
