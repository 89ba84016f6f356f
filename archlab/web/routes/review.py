"""The review form of an experiment page: approve, reject with a note, replace the code, or give
an idea. Decisions go through `archlab review`'s own function (`record_decision`); the running
driver applies them as it applies the CLI's."""
from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from archlab.commands.review import ReviewConflict
from archlab.errors import UsageError
from archlab.web.context import experiment_id, snapshot, web
from archlab.web.decisions import decide
from archlab.web.errors import BadRequest
from archlab.web.routes.pages import render_experiment

router = APIRouter()
MAX_FIELD = 200_000  # characters; a candidate file is at most 64 KB (the screen's limit) anyway


@router.post("/runs/{run}/experiments/{exp}/review")
def review_form(request: Request, run: str, exp: str, action: str = Form(..., max_length=16),
                csrf_token: str = Form("", max_length=128), note: str = Form("", max_length=MAX_FIELD),
                code: str = Form("", max_length=MAX_FIELD), name: str = Form("", max_length=200)) -> Response:
    if not web(request).guard.csrf_ok(csrf_token):
        raise BadRequest("the form's security token is missing or stale (the server restarted?); reload the page "
                         "and decide again", status_code=403)
    snap = snapshot(request, run)
    exp_id = experiment_id(snap, exp)
    try:
        note_for_person = decide(request, snap.run_dir, exp_id, action, note=note, code=code, name=name)
    except UsageError as error:
        fresh = snapshot(request, run)
        return render_experiment(request, run, fresh, exp_id, status_code=409 if isinstance(error, ReviewConflict) else 400,
                                 error=str(error), action=action, note=note, code=code, name=name)
    target = f"/runs/{run}/experiments/{exp_id}?recorded={action}"
    if note_for_person:
        target += "&idea_note=1"
    return RedirectResponse(target, status_code=303)
