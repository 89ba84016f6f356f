"""Pictures of a run as inline SVG strings (matplotlib, Agg-free SVG canvas, no pyplot).

Text is written as SVG <text> (matplotlib escapes it), a `$` in a name an LLM chose is escaped
so it cannot start a formula (`_plain`), and points can carry links (`href`) so a click opens the
experiment. matplotlib's settings are process-wide, so drawing holds one lock.
"""
from __future__ import annotations

import dataclasses
import io
import math
import re
import threading
from typing import Callable, Sequence

import matplotlib
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.collections import LineCollection
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullLocator

from archlab.insights.records import FitnessPoint, LineageNode

STYLE = {
    "svg.fonttype": "none", "svg.hashsalt": "archlab", "font.family": "sans-serif", "font.size": 9,
    "axes.spines.top": False, "axes.spines.right": False,
    "axes.edgecolor": "#9aa3ad", "axes.labelcolor": "#333", "xtick.color": "#555", "ytick.color": "#555",
    "axes.grid": True, "grid.color": "#e6e9ed", "grid.linewidth": 0.6, "legend.frameon": False,
}
OK, BEST, BASE, REF, FAIL, MUTED = "#2f6db5", "#d9822b", "#555", "#7b4fa0", "#c23b3b", "#9aa3ad"
CMAP = "RdYlGn"
_DRAWING = threading.Lock()
Href = Callable[[str], str]


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    FigureCanvasSVG(figure).print_svg(buffer, metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    return re.sub(r"^.*?(?=<svg)", "", text, count=1, flags=re.S)  # drop the XML prolog and doctype: inline


def _plain(text: str) -> str:
    """Text drawn as written: a `$` would otherwise start matplotlib's math mode (and a bad
    formula raises)."""
    return text.replace("$", r"\$")


def _figure(width: float, height: float) -> tuple[Figure, object]:
    figure = Figure(figsize=(width, height), dpi=72, layout="constrained")
    return figure, figure.add_subplot()


def fitness_svg(points: Sequence[FitnessPoint], baseline: float | None = 0.0, best_reference: tuple[str, float] | None = None,
                href: Href | None = None) -> str:
    """Fitness of each finished proposal over the run's minutes, the best so far as a step line,
    the baseline and the best reference as horizontal lines; proposals with no fitness (failed,
    rejected) as crosses along the bottom."""
    with _DRAWING, matplotlib.rc_context(STYLE):
        figure, axes = _figure(12.0, 3.6)
        short = max((p.minutes for p in points), default=0.0) < 2.0  # a short run reads better in seconds
        scale, unit = (60.0, "seconds") if short else (1.0, "minutes")
        points = [dataclasses.replace(p, minutes=p.minutes * scale) for p in points]
        scored = [p for p in points if _finite(p.fitness)]
        failed = [p for p in points if not _finite(p.fitness)]
        if baseline is not None:
            axes.axhline(baseline, color=BASE, linewidth=1, linestyle="--", label="baseline")
        if best_reference is not None:
            axes.axhline(best_reference[1], color=REF, linewidth=1, linestyle=":",
                         label=_plain(f"best reference ({best_reference[0]})"))
        if scored:
            dots = axes.scatter([p.minutes for p in scored], [p.fitness for p in scored], s=22, color=OK, alpha=0.8,
                                zorder=3, label="proposal")
            if href:
                dots.set_urls([href(p.id) for p in scored])
            steps = [p for p in points if _finite(p.best_so_far)]
            axes.step([p.minutes for p in steps], [p.best_so_far for p in steps], where="post", color=BEST,
                      linewidth=1.8, zorder=2, label="best so far")
        if failed:
            crosses = axes.scatter([p.minutes for p in failed], [0.02] * len(failed), marker="x", s=18, color=FAIL,
                                   transform=axes.get_xaxis_transform(), zorder=3, label="no fitness (failed)")
            if href:
                crosses.set_urls([href(p.id) for p in failed])
        axes.set_xlabel(f"{unit} since the run started")
        axes.set_ylabel("fitness (vs baseline)")
        if not points:
            axes.text(0.5, 0.5, "no finished proposals yet", transform=axes.transAxes, ha="center", color=MUTED)
        else:
            axes.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize=8, ncols=5)
        return _svg(figure)


def loss_svg(curves: Sequence[tuple[str, Sequence[tuple[int, float]]]]) -> str:
    """Training loss against step; the first curve is the experiment, the others (its parent,
    then the baseline, dashed) are drawn thinner for comparison."""
    with _DRAWING, matplotlib.rc_context(STYLE):
        figure, axes = _figure(6.0, 3.0)
        colours = (OK, MUTED, BASE)
        drawn = False
        for index, (label, curve) in enumerate(curves):
            if curve:
                axes.plot([p[0] for p in curve], [p[1] for p in curve], color=colours[min(index, 2)],
                          linewidth=1.8 if index == 0 else 1.0, linestyle="-" if index < 2 else "--", label=_plain(label))
                drawn = True
        axes.set_xlabel("training step")
        axes.set_ylabel("loss")
        if drawn:
            axes.legend(fontsize=8)
        else:
            axes.text(0.5, 0.5, "no loss curve recorded", transform=axes.transAxes, ha="center", color=MUTED)
        return _svg(figure)


def latency_svg(series: Sequence[tuple[str, dict[int, float]]]) -> str:
    """Milliseconds per forward pass against sequence length (log-log): the experiment, then its
    parent and the baseline (dashed), thinner."""
    with _DRAWING, matplotlib.rc_context(STYLE):
        figure, axes = _figure(6.0, 3.0)
        colours = (OK, MUTED, BASE)
        drawn = False
        measured: set[int] = set()
        for index, (label, latency) in enumerate(series):
            lengths = sorted(latency)
            if lengths:
                axes.plot(lengths, [latency[n] for n in lengths], marker="o", markersize=4,
                          color=colours[min(index, 2)], linewidth=1.8 if index == 0 else 1.0,
                          linestyle="-" if index < 2 else "--", label=_plain(label))
                drawn = True
                measured.update(lengths)
        axes.set_xlabel("sequence length")
        axes.set_ylabel("ms per forward")
        if drawn:
            axes.set_xscale("log", base=2)
            axes.set_yscale("log")
            axes.set_xticks(sorted(measured), [str(n) for n in sorted(measured)])
            axes.xaxis.set_minor_locator(NullLocator())
            plain = FuncFormatter(lambda value, _: f"{value:g}")
            axes.yaxis.set_major_formatter(plain)
            axes.yaxis.set_minor_formatter(plain)
            axes.legend(fontsize=8)
        else:
            axes.text(0.5, 0.5, "no latency measured", transform=axes.transAxes, ha="center", color=MUTED)
        return _svg(figure)


def _norm(values: list[float]) -> TwoSlopeNorm:
    """Colours centred on the baseline (fitness 0): green above it, red below."""
    low, high = min(values, default=-1.0), max(values, default=1.0)
    spread = max(abs(low), abs(high), 1e-6)
    return TwoSlopeNorm(vcenter=0.0, vmin=min(low, -spread * 0.05), vmax=max(high, spread * 0.05))


def lineage_svg(nodes: Sequence[LineageNode], href: Href | None = None, label_limit: int = 150) -> str:
    """The lineage tree left to right (generation on x), nodes coloured by fitness against the
    baseline; failed nodes as red crosses, rejected ones as grey squares, unfinished ones hollow.
    Ids are written beside the nodes when there are at most `label_limit` of them."""
    with _DRAWING, matplotlib.rc_context(STYLE):
        leaves = max((n.order for n in nodes), default=0) + 1
        depth = max((n.depth for n in nodes), default=0) + 1
        figure, axes = _figure(min(3.0 + depth * 1.1, 40.0), min(max(2.5, leaves * 0.2), 80.0))
        axes.grid(False)
        axes.axis("off")
        place = {n.id: (n.depth, -n.order) for n in nodes}
        edges = [(place[n.parent_id], place[n.id]) for n in nodes if n.parent_id in place]
        axes.add_collection(LineCollection(edges, colors="#c5ccd4", linewidths=0.8, zorder=1))
        scored = [n for n in nodes if _finite(n.fitness)]
        unscored = [n for n in nodes if not _finite(n.fitness)]
        groups = {
            "failed": [n for n in unscored if n.finished and n.outcome != "rejected"],
            "rejected": [n for n in unscored if n.outcome == "rejected"],
            "open": [n for n in unscored if not n.finished],
        }
        if scored:
            dots = axes.scatter([place[n.id][0] for n in scored], [place[n.id][1] for n in scored],
                                c=[n.fitness for n in scored], cmap=CMAP, norm=_norm([n.fitness for n in scored]),
                                s=[46 if n.reference else 30 for n in scored], edgecolors="#333", linewidths=0.4,
                                marker="o", zorder=3)
            if href:
                dots.set_urls([href(n.id) for n in scored])
            colorbar = figure.colorbar(dots, ax=axes, shrink=min(1.0, 2.5 / max(2.5, leaves * 0.2)), pad=0.01,
                                       aspect=12, anchor=(0.0, 1.0))
            colorbar.set_label("fitness (0 = baseline)")
        for kind, marker, colour, face in (("failed", "x", FAIL, FAIL), ("rejected", "s", MUTED, "none"),
                                           ("open", "o", OK, "none")):
            members = groups[kind]
            if members:
                style = {"color": colour} if marker == "x" else {"facecolors": face, "edgecolors": colour}
                artist = axes.scatter([place[n.id][0] for n in members], [place[n.id][1] for n in members],
                                      marker=marker, s=26, linewidths=1.0, zorder=3, label=kind, **style)
                if href:
                    artist.set_urls([href(n.id) for n in members])
        if len(nodes) <= label_limit:
            for n in nodes:
                axes.annotate(_plain(n.name if n.reference else n.id), place[n.id], xytext=(5, 0), textcoords="offset points",
                              va="center", fontsize=7, color="#333" if n.reference else "#555")
        axes.set_xlim(-0.3, depth - 0.2 + (1.2 if len(nodes) <= label_limit else 0))
        axes.set_ylim(-leaves + 0.3, 0.7)
        if any(groups.values()):
            axes.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize=8, ncols=3)
        if not nodes:
            axes.text(0.5, 0.5, "no experiments yet", transform=axes.transAxes, ha="center", color=MUTED)
        return _svg(figure)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
