"""The app factory: one FastAPI app serving one runs directory."""
from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from archlab.insights.format import FILTERS
from archlab.web import errors
from archlab.web.runs import SnapshotCache
from archlab.web.security import Guard, GuardMiddleware

HERE = Path(__file__).resolve().parent


@dataclass
class WebState:
    runs_dir: Path
    guard: Guard
    pages: Jinja2Templates
    cache: SnapshotCache = field(default_factory=SnapshotCache)
    # one decision at a time in this server, so a double click cannot record two
    deciding: threading.Lock = field(default_factory=threading.Lock)


def _templates() -> Jinja2Templates:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(FILTERS)
    return Jinja2Templates(env=env)


def create_app(runs_dir: Path, token: str | None = None, loopback_only: bool = True,
               secret: bytes | None = None) -> FastAPI:
    """`token`: required on every request when set (non-loopback binds). `loopback_only`: refuse
    requests addressed to any host but localhost (against DNS rebinding)."""
    from archlab.web.routes import api, pages, review

    app = FastAPI(title="archlab", docs_url=None, redoc_url=None, openapi_url=None)
    guard = Guard(token=token, secret=secret or secrets.token_bytes(32), loopback_only=loopback_only)
    state = WebState(runs_dir=runs_dir, guard=guard, pages=_templates())
    state.pages.env.globals.update(csrf_token=guard.csrf_token)
    app.state.web = state
    app.add_middleware(GuardMiddleware, guard=guard)
    errors.install(app)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for module in (pages, review, api):
        app.include_router(module.router)
    return app
