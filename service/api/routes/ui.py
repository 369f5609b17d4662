"""``/``, ``/ui`` and ``/ui/studies/{id}``: a small server-rendered view of the studies.

The pages read what the API's read endpoints read, under the same rule
(:func:`service.auth.require_read`): open in local mode on a loopback address (what
``vradam-hpo serve --local`` and the embedded server run), else a read token in the
``Authorization`` header (a browser sends none, so outside local mode the page says so,
with status 401/403, instead of weakening the rule). The landing page ``/`` shows no
data and needs nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from labcore.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from service import ui_pages
from service.api.routes.studies import study_view
from service.auth import Credentials, SettingsDep, StoreDep, require_read
from service.params import Offset, StudyId
from service.schemas import StudyOut, TrialOut

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 100


def _version(request: Request) -> str:
    return str(request.app.version)


def _denied(
    request: Request, store: StoreDep, settings: SettingsDep, creds: Credentials
) -> HTMLResponse | None:
    """None when the reader may read; else the HTML page that says why not."""
    try:
        require_read(request, store, settings, creds)
    except AuthenticationError as e:
        headers = {"WWW-Authenticate": "Bearer"}
        return HTMLResponse(ui_pages.denied(str(e), True), status_code=401, headers=headers)
    except PermissionDeniedError as e:
        return HTMLResponse(ui_pages.denied(str(e), False), status_code=403)
    return None


@router.get("/", response_class=HTMLResponse)
def landing(request: Request) -> HTMLResponse:
    """The landing page: links to the studies, the API docs and the probes."""
    return HTMLResponse(ui_pages.landing(_version(request)))


@router.get("/ui", response_class=HTMLResponse)
def ui_studies(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    creds: Credentials,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = PAGE_SIZE,
) -> HTMLResponse:
    """Every study with its status, progress, running trials and note (newest first)."""
    if (refused := _denied(request, store, settings, creds)) is not None:
        return refused
    records, total, details = store.study_page(limit=limit, offset=offset, with_spec=False)
    running = store.running_counts([r.id for r in records])
    studies = [
        StudyOut.from_records(r, *details[r.id], include_spec=False, running=running[r.id])
        for r in records
    ]
    return HTMLResponse(ui_pages.study_list(studies, total, offset, limit))


@router.get("/ui/studies/{study_id}", response_class=HTMLResponse)
def ui_study(
    request: Request,
    study_id: StudyId,
    store: StoreDep,
    settings: SettingsDep,
    creds: Credentials,
) -> HTMLResponse:
    """One study: progress per cell, its running trials and its report (embedded)."""
    if (refused := _denied(request, store, settings, creds)) is not None:
        return refused
    try:
        study = study_view(store, study_id)
    except NotFoundError as e:
        return HTMLResponse(ui_pages.not_found(str(e)), status_code=404)
    running = [TrialOut.from_running(r) for r in store.list_running(study_id)]
    metric = str((study.spec or {}).get("objective", {}).get("metric", "val_loss"))
    return HTMLResponse(ui_pages.study_page(study, running, metric))
