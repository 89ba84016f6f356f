"""The HTML pages: runs, a run's dashboard, its experiments, one experiment, the lineage tree,
two experiments compared, and an experiment's files (as plain text)."""
from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from archlab.commands.review import offline_idea_note
from archlab.insights import plots
from archlab.insights.detail import comparison, experiment_detail, latency, loss_curve
from archlab.insights.highlight import diff_html, python_html
from archlab.insights.lineage import lineage
from archlab.insights.records import ExperimentDetail, RunSummary
from archlab.insights.snapshot import RunSnapshot, load_history
from archlab.insights.summary import experiment_rows, run_listing, run_summary
from archlab.insights.table import SORT_KEYS, TableQuery, choices, select
from archlab.insights.yardstick import run_yardstick
from archlab.web.context import experiment_id, run_dir, snapshot, table_query, web
from archlab.web.files import file_response
from archlab.web.review_state import ACTIONS, review_state
from archlab.web.runs import run_names, version

router = APIRouter()


def _page(request: Request, template: str, status_code: int = 200, **context) -> HTMLResponse:
    """A page; a run's page also carries the run's version, which its script polls."""
    if "run" in context:
        context["version"] = version(run_dir(request, context["run"]))
    return web(request).pages.TemplateResponse(request, template, context, status_code=status_code)


def _href(run: str):
    return lambda exp_id: f"/runs/{run}/experiments/{exp_id}"


def fitness_plot(snap: RunSnapshot, summary: RunSummary) -> str:
    reference = summary.best_reference
    return plots.fitness_svg(summary.fitness, baseline=0.0 if summary.baseline else None,
                             best_reference=(reference.name, reference.fitness) if reference else None,
                             href=_href(snap.run_dir.name))


@router.get("/", response_class=HTMLResponse)
def runs_page(request: Request):
    state = web(request)
    listings = [run_listing(state.runs_dir / name) for name in run_names(state.runs_dir)]
    return _page(request, "runs.html", runs=listings, runs_dir=str(state.runs_dir),
                 live=any(r.state == "running" for r in listings))


@router.get("/runs/{run}", response_class=HTMLResponse)
def run_page(request: Request, run: str):
    snap = snapshot(request, run)
    summary = run_summary(snap)
    key = ("fitness", run, summary.fitness, summary.baseline is not None, summary.best_reference)
    plot = web(request).cache.drawing(key, lambda: fitness_plot(snap, summary))
    return _page(request, "run.html", run=run, summary=summary, fitness_svg=plot, yardstick=run_yardstick(snap),
                 live=summary.state == "running")


COLUMNS = (("id", "id"), ("name", "name"), ("proposer", "proposer"), ("parent", "parent"), ("outcome", "outcome"),
           ("fitness", "fitness"), ("params", "params"), ("tokens_per_s", "train tok/s"),
           ("latency_ms", "latency ms"), ("llm_tokens", "LLM tokens"), ("cost_usd", "cost"))
PAGE_ROWS = 500  # rows a page shows unless ?limit= asks for more: a browser stays quick
NUMERIC = frozenset({"fitness", "params", "tokens_per_s", "latency_ms", "llm_tokens", "cost_usd"})


def _columns(request: Request, query: TableQuery) -> list[dict]:
    """Each header's link sorts on the server (without JavaScript), keeping the filters; a
    second click on the sorted column reverses it."""
    columns = []
    for key, label in COLUMNS:
        natural = "desc" if SORT_KEYS[key][1] else "asc"
        current = ("desc" if query.descending else "asc") if query.descending is not None else natural
        sorted_now = current if query.sort == key else ""
        order = ("asc" if current == "desc" else "desc") if sorted_now else natural
        href = request.url.include_query_params(sort=key, order=order)
        columns.append({"key": key, "label": label, "numeric": key in NUMERIC, "natural": natural,
                        "sorted": sorted_now, "href": f"?{href.query}"})
    return columns


@router.get("/runs/{run}/experiments", response_class=HTMLResponse)
def experiments_page(request: Request, run: str, query: TableQuery = Depends(table_query)):
    snap = snapshot(request, run)
    rows = experiment_rows(snap)
    matching = select(rows, query)
    shown = matching[:query.limit or PAGE_ROWS]
    more = request.url.include_query_params(limit=len(matching)) if len(shown) < len(matching) else None
    return _page(request, "experiments.html", run=run, rows=shown, matching=len(matching), total=len(rows),
                 query=query, choices=choices(rows), columns=_columns(request, query), live=bool(snap.driver),
                 all_href=f"?{more.query}" if more else "")


def _plots(snap: RunSnapshot, detail: ExperimentDetail) -> dict[str, str]:
    exp = snap.by_id[detail.row.id]
    parent = snap.by_id.get(exp.parent_id) if exp.parent_id else None
    baseline = snap.baseline if snap.baseline and snap.baseline.id != exp.id else None
    curves = [(exp.id, detail.loss_curve)]
    speeds = [(exp.id, detail.latency_ms)]
    if parent is not None:
        curves.append((f"parent {parent.id}", loss_curve(parent)))
        speeds.append((f"parent {parent.id}", latency(parent)))
    if baseline is not None:
        curves.append((f"baseline {baseline.name}", loss_curve(baseline)))
        speeds.append((f"baseline {baseline.name}", latency(baseline)))
    return {"loss": plots.loss_svg(curves), "latency": plots.latency_svg(speeds)}


@router.get("/runs/{run}/experiments/{exp}", response_class=HTMLResponse)
def experiment_page(request: Request, run: str, exp: str, recorded: str = Query("", max_length=16),
                    idea_note: bool = Query(False)):
    """`recorded` and `idea_note` come from the review form's redirect: what to confirm."""
    snap = snapshot(request, run)
    exp_id = experiment_id(snap, exp)
    note = offline_idea_note("") if idea_note and snap.config.llm is None else ""
    return render_experiment(request, run, snap, exp_id, recorded=recorded if recorded in ACTIONS else "",
                             idea_note=note)


def render_experiment(request: Request, run: str, snap: RunSnapshot, exp_id: str, status_code: int = 200,
                      **review) -> HTMLResponse:
    """The experiment page; the review form's outcome (`recorded`, `error`, what was typed) in `review`."""
    calls, events = load_history(snap, exp_id)
    detail = experiment_detail(snap, exp_id, calls, events)
    related = [snap.by_id.get(i) for i in (exp_id, snap.by_id[exp_id].parent_id, getattr(snap.baseline, "id", None))]
    key = ("experiment", run, tuple((e.id, e.updated_at) for e in related if e is not None))
    figures = web(request).cache.drawing(key, lambda: _plots(snap, detail))
    return _page(request, "experiment.html", status_code=status_code, run=run, d=detail,
                 code_html=python_html(detail.code) if detail.code else "",
                 diff_html=diff_html(detail.diff) if detail.diff else "", plots=figures,
                 review=review_state(snap, detail, events), form=review,
                 live=bool(snap.driver) and not detail.row.finished)


@router.get("/runs/{run}/experiments/{exp}/files/{path:path}")
def experiment_file(request: Request, run: str, exp: str, path: str) -> Response:
    folder = run_dir(request, run)
    return file_response(folder, exp, path)


@router.get("/runs/{run}/tree", response_class=HTMLResponse)
def tree_page(request: Request, run: str):
    snap = snapshot(request, run)
    nodes = lineage(snap)
    svg = web(request).cache.drawing(("lineage", run, tuple(nodes)),
                                     lambda: plots.lineage_svg(nodes, href=_href(snap.run_dir.name)))
    return _page(request, "tree.html", run=run, nodes=nodes, tree_svg=svg, live=bool(snap.driver))


@router.get("/runs/{run}/compare", response_class=HTMLResponse)
def compare_page(request: Request, run: str, a: str = Query("", max_length=64), b: str = Query("", max_length=64)):
    snap = snapshot(request, run)
    ids = [e.id for e in snap.experiments]
    if not a or not b:
        return _page(request, "compare.html", run=run, ids=ids, a=a, b=b, c=None, a_code="", b_code="", diff="")
    c = comparison(snap, experiment_id(snap, a), experiment_id(snap, b))
    return _page(request, "compare.html", run=run, ids=ids, a=a, b=b, c=c,
                 a_code=python_html(c.a.code) if c.a.code else "", b_code=python_html(c.b.code) if c.b.code else "",
                 diff=diff_html(c.diff) if c.diff else "")
