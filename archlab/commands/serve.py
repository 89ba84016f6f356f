"""`archlab serve [--runs-dir DIR] [--host 127.0.0.1] [--port 8765]`: the web app over a runs directory.

On loopback (the default) it answers only requests addressed to localhost. Bound to any other
address it makes an access token (or takes --token) and refuses every request without it.
"""
from __future__ import annotations

import argparse
import errno
import secrets
import socket
from pathlib import Path

from archlab.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="a local web app to watch, review and steer runs")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.add_argument("--host", default="127.0.0.1", help="address to bind; anything but loopback requires the "
                        "access token printed at start on every request")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--token", help="the access token to require (default off loopback: a random one)")
    parser.set_defaults(handler=run)


def _check_port(host: str, port: int) -> None:
    """Say plainly when the address cannot be bound, before the server starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise UsageError(f"port {port} on {host} is in use (another `archlab serve`?); choose another with "
                                 "--port") from error
            raise UsageError(f"cannot listen on {host}:{port}: {error.strerror}; check --host and --port") from error


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from archlab.web.app import create_app
    from archlab.web.security import is_loopback

    if not args.runs_dir.is_dir():
        raise UsageError(f"no runs directory {args.runs_dir}; give one with --runs-dir (runs are made by `archlab run`)")
    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port}: choose a port between 1 and 65535")
    loopback = is_loopback(args.host)
    token = args.token or (None if loopback else secrets.token_urlsafe(24))
    _check_port(args.host, args.port)
    app = create_app(args.runs_dir.resolve(), token=token, loopback_only=loopback)
    shown = "localhost" if loopback else args.host
    address = f"http://{'[' + shown + ']' if ':' in shown else shown}:{args.port}/"
    print(f"archlab serve: {args.runs_dir} at {address}" + (f"?token={token}" if token else ""), flush=True)
    if token:
        print(f"  access token: {token} (every request needs it; open the address above once, or send "
              "'Authorization: Bearer TOKEN')", flush=True)
    print("  Ctrl-C stops it", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", server_header=False)
    return 0
