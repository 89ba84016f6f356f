"""The JSON API: the pages' data for scripts and notebooks, and review decisions.

    GET  /api/runs                                  the runs
    GET  /api/runs/{run}                            the run's summary (progress, fitness, failures, spend)
    GET  /api/runs/{run}/yardstick                  rungs' and proxies' rank correlations, best vs reference, the gate
    GET  /api/runs/{run}/version                    changes whenever the run does (pages poll it)
    GET  /api/runs/{run}/experiments                rows; the table's filters (?sort=fitness&outcome=ok)
    GET  /api/runs/{run}/experiments/{exp}          one experiment in full, with LLM calls and events
    GET  /api/runs/{run}/tree                       the lineage tree
    GET  /api/runs/{run}/compare?a=..&b=..          two experiments' metrics and code diff
    POST /api/runs/{run}/experiments/{exp}/review   {"action": "approve"|"reject"|"replace"|"idea",
                                                     "note": ..., "code": ..., "name": ...}
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from archlab.commands.review import ReviewConflict
from archlab.errors import UsageError, validation_problems
from archlab.insights.detail import comparison, experiment_detail
from archlab.insights.lineage import lineage
from archlab.insights.snapshot import load_history
from archlab.insights.summary import experiment_rows, run_listing, run_summary
from archlab.insights.table import TableQuery, select
from archlab.insights.yardstick import run_yardstick
from archlab.web.context import experiment_id, run_dir, snapshot, table_query, web
from archlab.web.decisions import decide
from archlab.web.errors import BadRequest
from archlab.web.runs import run_names, version

router = APIRouter(prefix="/api")
MAX_BODY = 512 * 1024


def plain(value: Any) -> Any:
    """JSON-ready: records and models as objects, tuples as lists, and NaN/inf (a diverged loss
    curve has them) as null, since JSON has no such numbers."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, BaseModel):
        return plain(value.model_dump(mode="python"))
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "value") and isinstance(getattr(value, "value"), str):  # enums
        return value.value
    return value


def _json(value: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(plain(value), status_code=status_code)


@router.get("/runs")
def runs(request: Request) -> JSONResponse:
    state = web(request)
    return _json([run_listing(state.runs_dir / name) for name in run_names(state.runs_dir)])


@router.get("/runs/{run}")
def run(request: Request, run: str) -> JSONResponse:
    return _json(run_summary(snapshot(request, run)))


@router.get("/runs/{run}/yardstick")
def yardstick(request: Request, run: str) -> JSONResponse:
    return _json(run_yardstick(snapshot(request, run)))


@router.get("/runs/{run}/version")
def run_version(request: Request, run: str) -> JSONResponse:
    return _json({"version": version(run_dir(request, run))})


@router.get("/runs/{run}/experiments")
def experiments(request: Request, run: str, query: TableQuery = Depends(table_query)) -> JSONResponse:
    snap = snapshot(request, run)
    rows = experiment_rows(snap)
    return _json(select(rows, query)[:query.limit])


@router.get("/runs/{run}/experiments/{exp}")
def experiment(request: Request, run: str, exp: str) -> JSONResponse:
    snap = snapshot(request, run)
    exp_id = experiment_id(snap, exp)
    calls, events = load_history(snap, exp_id)
    return _json(experiment_detail(snap, exp_id, calls, events))


@router.get("/runs/{run}/tree")
def tree(request: Request, run: str) -> JSONResponse:
    return _json(lineage(snapshot(request, run)))


@router.get("/runs/{run}/compare")
def compare(request: Request, run: str, a: str = Query(..., max_length=64),
            b: str = Query(..., max_length=64)) -> JSONResponse:
    snap = snapshot(request, run)
    return _json(comparison(snap, experiment_id(snap, a), experiment_id(snap, b)))


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["approve", "reject", "replace", "idea"]
    note: str = Field("", max_length=200_000)
    code: str = Field("", max_length=200_000)
    name: str = Field("", max_length=200)


@router.post("/runs/{run}/experiments/{exp}/review")
async def review(request: Request, run: str, exp: str) -> JSONResponse:
    """Only `application/json` (a cross-site form cannot send it); the body is read here, not by
    FastAPI, so that any other content type is refused before it is parsed."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise BadRequest("send the decision as JSON (Content-Type: application/json)", status_code=415)
    body = await request.body()
    if len(body) > MAX_BODY:
        raise BadRequest(f"the decision is {len(body) // 1024} KB; at most {MAX_BODY // 1024} KB", status_code=413)
    try:
        decision = Decision.model_validate_json(body)
    except ValidationError as error:
        raise BadRequest(f"bad decision: {validation_problems(error)}; send "
                         '{"action": "approve"|"reject"|"replace"|"idea", "note": ..., "code": ..., "name": ...}') from error
    return await run_in_threadpool(_record, request, run, exp, decision)


def _record(request: Request, run: str, exp: str, decision: Decision) -> JSONResponse:
    snap = snapshot(request, run)
    exp_id = experiment_id(snap, exp)
    try:
        note = decide(request, snap.run_dir, exp_id, decision.action, note=decision.note, code=decision.code,
                      name=decision.name)
    except UsageError as error:
        raise BadRequest(str(error), status_code=409 if isinstance(error, ReviewConflict) else 400) from error
    return _json({"experiment": exp_id, "recorded": decision.action, "note": note,
                  "message": f"{exp_id}: {decision.action} recorded; the run applies it next"})
