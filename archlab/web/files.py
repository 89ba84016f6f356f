"""An experiment's files (candidate, eval.json, logs) served as plain text, and nothing else:
the path is resolved, symbolic links included, and must stay inside the experiment's folder."""
from __future__ import annotations

import re
from pathlib import Path

from fastapi.responses import Response

from archlab.web.errors import BadRequest
from archlab.web.runs import EXPERIMENT_ID

MAX_BYTES = 4 * 2**20


def file_response(run_dir: Path, exp_id: str, relative: str) -> Response:
    if not EXPERIMENT_ID.match(exp_id):
        raise BadRequest(f"{exp_id!r} is not an experiment id", status_code=404)
    folder = (run_dir / "experiments" / exp_id).resolve()
    if folder.parent != (run_dir / "experiments").resolve() or not folder.is_dir():
        raise BadRequest(f"experiment {exp_id} has no folder in this run", status_code=404)
    if "\x00" in relative or relative.startswith("/"):
        raise BadRequest(f"{relative!r} is not a path inside the experiment's folder", status_code=404)
    target = (folder / relative).resolve()
    if not target.is_relative_to(folder):
        raise BadRequest(f"{relative!r} is outside the experiment's folder; only its own files are served",
                         status_code=404)
    if not target.is_file():
        raise BadRequest(f"experiment {exp_id} has no file {relative!r}; its page lists its files", status_code=404)
    size = target.stat().st_size
    if size > MAX_BYTES:
        raise BadRequest(f"{relative} is {size // 2**20} MiB; files over {MAX_BYTES // 2**20} MiB are not shown here "
                         f"(read it at {target})", status_code=413)
    data = target.read_bytes()
    try:
        return Response(data.decode("utf-8"), media_type="text/plain; charset=utf-8")
    except UnicodeDecodeError:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", target.name)
        return Response(data, media_type="application/octet-stream",
                        headers={"Content-Disposition": f'attachment; filename="{safe}"'})
