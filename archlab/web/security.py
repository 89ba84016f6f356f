"""Who may use the app and how: an access token off loopback, CSRF tokens on forms, a Host check
against DNS rebinding, and headers that keep pages from running anything but our own script.

- Loopback binds (the default) answer only requests whose Host is a loopback name, so a web page
  elsewhere cannot reach the app through a hostname that resolves to 127.0.0.1.
- Any other bind needs the access token on every request: `?token=` once (it is then kept in an
  HttpOnly cookie and dropped from the address bar), `Authorization: Bearer`, or `X-Archlab-Token`.
- Forms carry a token derived from a secret made when the server starts (a synchronizer token:
  another site cannot read our pages, so it cannot know it). The JSON API accepts only
  `application/json`, which a cross-site form cannot send, and any request whose Origin is not
  this app's own is refused.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from starlette.datastructures import URL
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

TOKEN_COOKIE = "archlab_token"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # "no-referrer" makes browsers send "Origin: null" on our own forms
    "Cache-Control": "no-store",
}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Guard:
    """The server's secrets: `token` (None: loopback, no token) and the CSRF secret."""

    token: str | None
    secret: bytes
    loopback_only: bool

    @property
    def csrf_token(self) -> str:
        return hmac.new(self.secret, b"archlab-csrf-v1", hashlib.sha256).hexdigest()

    def csrf_ok(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(given, self.csrf_token)

    def token_ok(self, given: str | None) -> bool:
        return self.token is None or (bool(given) and hmac.compare_digest(given, self.token))


def _host_name(request: Request) -> str:
    return urlsplit("//" + request.headers.get("host", "")).hostname or ""


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def refuse(request: Request, status: int, message: str) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": message}, status_code=status, headers=HEADERS)
    return PlainTextResponse(f"{status}: {message}\n", status_code=status, headers=HEADERS)


def origin_ok(request: Request) -> bool:
    """A state-changing request comes from our own pages (or from a script, with no Origin)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    return parts.netloc == request.headers.get("host", "") and parts.scheme in ("http", "https")


class GuardMiddleware(BaseHTTPMiddleware):
    def __init__(self, app, guard: Guard):
        super().__init__(app)
        self.guard = guard

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        guard = self.guard
        if guard.loopback_only and not is_loopback(_host_name(request)):
            return refuse(request, 403, f"this server answers only at localhost/127.0.0.1, not at host "
                          f"{request.headers.get('host', '(none)')!r}")
        if guard.token is not None:
            given = request.query_params.get("token")
            if given is not None and guard.token_ok(given) and request.method == "GET":
                return _keep_token(request, given)
            bearer = request.headers.get("authorization", "")
            offered = (bearer[7:] if bearer.lower().startswith("bearer ") else None) \
                or request.headers.get("x-archlab-token") or request.cookies.get(TOKEN_COOKIE) or given
            if not guard.token_ok(offered):
                return refuse(request, 401, "this server needs its access token (printed when it started): open "
                              "the address with ?token=TOKEN once, or send 'Authorization: Bearer TOKEN'")
        if request.method not in ("GET", "HEAD", "OPTIONS") and not origin_ok(request):
            return refuse(request, 403, f"cross-site request refused (Origin {request.headers.get('origin')!r} "
                          "is not this server)")
        response = await call_next(request)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response


def _keep_token(request: Request, token: str) -> Response:
    """The token from the address, kept in a cookie; the address is shown again without it."""
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
    target = URL(path=request.url.path, query=query)
    response = RedirectResponse(str(target), status_code=303, headers=HEADERS)
    response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict", path="/")
    return response
