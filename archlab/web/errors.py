"""Every failure as a clear answer: 4xx with what to change for a bad request, and for a real bug
a plain 500 page (the traceback goes to the server's log, never to the client)."""
from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from archlab.errors import UsageError
from archlab.insights.table import TableQueryError
from archlab.web.runs import RunNotFound
from archlab.web.security import HEADERS

log = logging.getLogger("archlab.web")


class BadRequest(HTTPException):
    """A 4xx whose detail tells the client what to change."""

    def __init__(self, detail: str, status_code: int = 400):
        super().__init__(status_code=status_code, detail=detail)


def _answer(request: Request, status: int, message: str) -> Response:
    from fastapi.responses import JSONResponse

    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, status_code=status, headers=HEADERS)
    pages = request.app.state.web.pages
    return pages.TemplateResponse(request, "error.html", {"status": status, "message": message},
                                  status_code=status, headers=HEADERS)


def _validation_message(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item.get("loc", ()) if p not in ("query", "body", "path"))
        parts.append(f"{where or 'request'}: {item.get('msg', 'is not valid')}")
    return "bad request: " + "; ".join(parts)


def install(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        message = error.detail if isinstance(error.detail, str) else str(error.detail)
        if error.status_code == 404 and message == "Not Found":
            message = f"nothing at {request.url.path}; the runs are listed at /"
        if error.status_code == 405:
            message = f"{request.method} is not allowed at {request.url.path}"
        return _answer(request, error.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        return _answer(request, 400, _validation_message(error))

    @app.exception_handler(RunNotFound)
    async def no_run(request: Request, error: RunNotFound) -> Response:
        return _answer(request, 404, str(error.args[0]))

    @app.exception_handler(TableQueryError)
    async def bad_query(request: Request, error: TableQueryError) -> Response:
        return _answer(request, 400, str(error))

    @app.exception_handler(UsageError)
    async def unusable(request: Request, error: UsageError) -> Response:
        return _answer(request, 409, str(error))  # the run cannot serve this now (no archive yet, too new)

    @app.exception_handler(Exception)
    async def bug(request: Request, error: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _answer(request, 500, "internal error: the server's log has the details; please report it")
