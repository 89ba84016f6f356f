"""What every route needs from a request: the app's state, a run's folder and snapshot, and the
experiments table's query (shared by the page and the API so both filter alike)."""
from __future__ import annotations

from pathlib import Path

from fastapi import Query, Request

from archlab.insights.snapshot import RunSnapshot
from archlab.insights.table import TableQuery
from archlab.web.app import WebState
from archlab.web.errors import BadRequest
from archlab.web.runs import EXPERIMENT_ID, find_run_dir


def web(request: Request) -> WebState:
    return request.app.state.web


def run_dir(request: Request, run: str) -> Path:
    return find_run_dir(web(request).runs_dir, run)


def snapshot(request: Request, run: str) -> RunSnapshot:
    return web(request).cache.get(run_dir(request, run))


def experiment_id(snap: RunSnapshot, exp: str) -> str:
    """`exp` if the run has it, else a 404 that says where the ids are listed."""
    if not EXPERIMENT_ID.match(exp) or exp not in snap.by_id:
        raise BadRequest(f"run {snap.name} has no experiment {exp!r}; its experiments are listed at "
                         f"/runs/{snap.run_dir.name}/experiments", status_code=404)
    return exp


def table_query(sort: str = Query("id", max_length=32), order: str = Query("", pattern="^(|asc|desc)$"),
                outcome: str = Query("", max_length=200), stage: str = Query("", max_length=200),
                proposer: str = Query("", max_length=200), q: str = Query("", max_length=200),
                min_fitness: float | None = Query(None), max_params: int | None = Query(None, ge=0),
                references: bool = Query(True), limit: int | None = Query(None, ge=1)) -> TableQuery:
    """Query parameters of the experiments table (page and API): `?sort=fitness&order=desc&outcome=ok,leaky`."""
    return TableQuery(sort=sort, descending={"asc": False, "desc": True}.get(order), outcome=outcome, stage=stage,
                      proposer=proposer, text=q, min_fitness=min_fitness, max_params=max_params, references=references,
                      limit=limit)
