"""A report as one self-contained HTML file (styles and SVG plots inline, nothing fetched) or as
Markdown for notes, with its plots as SVG files in a folder beside it.

Text an LLM or a candidate wrote is escaped: HTML by Jinja's autoescape, Markdown by the `cell`
filter in tables and by fences longer than any run of backticks around code and diffs.
"""
from __future__ import annotations

import re
from pathlib import Path

import jinja2

from archlab.insights.format import FILTERS
from archlab.insights.highlight import diff_html, python_html, stylesheet
from archlab.report.build import Report

TEMPLATES = Path(__file__).resolve().parent / "templates"


def cell(text: object) -> str:
    """Text for one Markdown table cell: one line, pipes and markup characters escaped."""
    flat = " ".join(str(text).split())
    return re.sub(r"([\\|`*_\[\]<#])", r"\\\1", flat)


def fence(text: str, info: str = "") -> str:
    """`text` in a fenced code block whose fence no line of the text can close."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{info}\n{text.rstrip()}\n{ticks}"


def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=autoescape,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(FILTERS)
    env.filters.update(python_html=python_html, diff_html=diff_html, cell=cell, fence=fence)
    return env


def render_html(report: Report) -> str:
    css = (TEMPLATES / "report.css").read_text() + "\n" + stylesheet()
    return _environment(True).get_template("report.html.j2").render(r=report, css=css)


def plots_folder(path: Path) -> Path:
    """Where a Markdown report's plots go: `NAME_plots/` beside `NAME.md`."""
    return path.with_name(f"{path.stem}_plots")


def render_markdown(report: Report, plots_dir: str | None) -> str:
    """`plots_dir`: the folder the plots are linked from, relative to the .md (None: left out,
    with a line saying so)."""
    return _environment(False).get_template("report.md.j2").render(r=report, plots_dir=plots_dir)


def write_report(report: Report, path: Path, fmt: str, with_plots: bool = True) -> list[Path]:
    """Write the report (and a Markdown report's plots); returns every file written."""
    if fmt == "html":
        path.write_text(render_html(report), encoding="utf-8")
        return [path]
    written = []
    folder = plots_folder(path)
    if with_plots:
        folder.mkdir(parents=True, exist_ok=True)
        for plot in report.plots.values():
            target = folder / f"{plot.name}.svg"
            target.write_text(plot.svg, encoding="utf-8")
            written.append(target)
    path.write_text(render_markdown(report, folder.name if with_plots else None), encoding="utf-8")
    return [path, *written]
