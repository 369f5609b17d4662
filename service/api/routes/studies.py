"""Studies: submit, list, inspect, cancel and delete."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from labcore.errors import SpecError
from service.auth import ReadAccess, SettingsDep, StoreDep, WriteAccess
from service.errors import error_responses
from service.params import Offset, StudyId
from service.schemas import Page, StudyOut
from service.settings import Settings
from studies.store import Store
from studies.store.records import StudyStatus

router = APIRouter(
    prefix="/studies",
    tags=["studies"],
    # 422 here also replaces FastAPI's default HTTPValidationError: errors are ErrorBody
    responses=error_responses(401, 403, 422, 503),
)


def study_view(store: Store, study_id: str) -> StudyOut:
    """Return the API view of one study: record, cells and outcome counts.

    Raises:
        NotFoundError: No such study.
    """
    running = store.running_counts([study_id])[study_id]
    return StudyOut.from_records(*store.study_with_details(study_id), running=running)


def parse_body(raw: bytes) -> dict[str, Any]:
    """Decode a JSON request body into a mapping, refusing nesting bombs.

    Raises:
        SpecError: Empty, not UTF-8 JSON, nested too deeply, or not an object.
    """
    from studies.spec_text import check_shape

    if not raw.strip():
        raise SpecError("a JSON study definition is required as the request body")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError
        raise SpecError(f"the body is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise SpecError(f"the body must be a JSON object, not {type(data).__name__}")
    check_shape(data)
    return data


def parse_spec(body: dict[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """Validate a submitted study definition, its trust boundary and its size.

    Returns:
        The definition as a JSON-able dict.

    Raises:
        SpecError: The definition is invalid or over a limit; each problem names its
            field path.
    """
    from studies.limits import check_limits
    from studies.spec import parse_spec as parse

    settings = settings or Settings()
    spec = parse(body, trust=settings.trust())  # the service's trust boundary
    check_limits(spec, settings.limits)
    return spec.model_dump(mode="json")


def _submit(store: Store, settings: Settings, raw: bytes) -> StudyOut:
    spec = parse_spec(parse_body(raw), settings)
    return StudyOut.from_records(store.create_study(spec["name"], spec))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Submit a study",
    dependencies=[WriteAccess],
    responses=error_responses(413),
)
async def submit_study(
    request: Request, store: StoreDep, settings: SettingsDep, response: Response
) -> StudyOut:
    """Validate the definition against the registries and the limits; queue the study.

    The body is a study definition (the `StudySpec` schema) as JSON.

    Raises:
        SpecError: The definition is invalid or over a limit (422, with field paths).
        BodyTooLarge: The body is over the size limit (413).
    """
    raw = await request.body()
    view = await run_in_threadpool(_submit, store, settings, raw)
    response.headers["Location"] = view.links.self
    return view


def json_response(model: BaseModel) -> Response:
    """Serialise an already validated view once (FastAPI would validate it again)."""
    return Response(model.model_dump_json(), media_type="application/json")


@router.get(
    "",
    summary="List studies",
    dependencies=[ReadAccess],
    response_model=Page[StudyOut],
)
def list_studies(
    store: StoreDep,
    status_: Annotated[
        StudyStatus | None, Query(alias="status", description="Only studies with this status.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
    include: Annotated[
        Literal["spec"] | None,
        Query(description="`spec`: also return each study's definition (large)."),
    ] = None,
) -> Response:
    """Return a page of studies, newest first, without their definitions unless asked.

    A constant number of queries whatever the page size: the page, its total, and the
    cells, outcome counts and running trials of every study on it.
    """
    with_spec = include == "spec"
    records, total, details = store.study_page(
        status=status_, limit=limit, offset=offset, with_spec=with_spec
    )
    running = store.running_counts([r.id for r in records])
    items = [
        StudyOut.from_records(r, *details[r.id], include_spec=with_spec, running=running[r.id])
        for r in records
    ]
    return json_response(Page[StudyOut](items=items, total=total, limit=limit, offset=offset))


@router.get(
    "/{study_id}",
    summary="One study: definition, status, progress per cell, timings, counts",
    dependencies=[ReadAccess],
    responses=error_responses(404),
    response_model=StudyOut,
)
def get_study(study_id: StudyId, store: StoreDep) -> Response:
    """Return the study.

    Raises:
        NotFoundError: No such study (404).
    """
    return json_response(study_view(store, study_id))


@router.post(
    "/{study_id}/cancel",
    summary="Cancel a study",
    dependencies=[WriteAccess],
    responses=error_responses(404, 409),
)
def cancel_study(study_id: StudyId, store: StoreDep) -> StudyOut:
    """Cancel a study: a queued one at once; a running one stops within seconds.

    Finished trials are kept. The worker sets the status to ``cancelled`` once its
    running trials have stopped.

    Raises:
        NotFoundError: No such study (404).
        ConflictError: The study already finished (409).
    """
    store.request_cancel(study_id)
    return study_view(store, study_id)


@router.delete(
    "/{study_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a study",
    dependencies=[WriteAccess],
    responses=error_responses(404, 409),
)
def delete_study(study_id: StudyId, store: StoreDep) -> Response:
    """Delete a study with its cells, trials, epochs and Optuna studies.

    Raises:
        NotFoundError: No such study (404).
        ConflictError: The study is running; cancel it first (409).
    """
    store.delete_study(study_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
