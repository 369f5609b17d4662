"""Studies: submit, list, inspect, cancel and delete."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response, status

from service.auth import ReadAccess, StoreDep, WriteAccess
from service.errors import error_responses
from service.schemas import Page, StudyOut
from studies.store import Store
from studies.store.records import StudyStatus

if TYPE_CHECKING:
    from studies.trust import Trust

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
    record = store.get_study(study_id)
    return StudyOut.from_records(record, store.list_cells(study_id), store.outcome_counts(study_id))


def parse_spec(body: dict[str, Any], trust: Trust) -> dict[str, Any]:
    """Validate a submitted study definition at the service's boundary; return its dict.

    Raises:
        SpecError: The definition is invalid; each problem names its field path.
    """
    from studies.spec import parse_spec as parse

    return parse(body, trust=trust).model_dump(mode="json")


def _spec_schema() -> dict[str, Any]:
    from studies.spec import StudySpec

    return StudySpec.model_json_schema(ref_template="#/components/schemas/{model}")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Submit a study",
    dependencies=[WriteAccess],
)
def submit_study(
    request: Request,
    store: StoreDep,
    response: Response,
    body: Annotated[
        dict[str, Any],
        Body(description="A study definition (the `StudySpec` schema), as JSON."),
    ],
) -> StudyOut:
    """Validate the definition against the registries and queue the study.

    Raises:
        SpecError: The definition is invalid (422, with field paths).
    """
    spec = parse_spec(body, request.app.state.settings.trust())
    record = store.create_study(spec["name"], spec)
    view = StudyOut.from_records(record)
    response.headers["Location"] = view.links.self
    return view


@router.get("", summary="List studies", dependencies=[ReadAccess])
def list_studies(
    store: StoreDep,
    status_: Annotated[
        StudyStatus | None, Query(alias="status", description="Only studies with this status.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[StudyOut]:
    """Return a page of studies, newest first."""
    records, total = store.list_studies(status=status_, limit=limit, offset=offset)
    items = [
        StudyOut.from_records(r, store.list_cells(r.id), store.outcome_counts(r.id))
        for r in records
    ]
    return Page[StudyOut](items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/{study_id}",
    summary="One study: definition, status, progress per cell, timings, counts",
    dependencies=[ReadAccess],
    responses=error_responses(404),
)
def get_study(study_id: str, store: StoreDep) -> StudyOut:
    """Return the study.

    Raises:
        NotFoundError: No such study (404).
    """
    return study_view(store, study_id)


@router.post(
    "/{study_id}/cancel",
    summary="Cancel a study",
    dependencies=[WriteAccess],
    responses=error_responses(404, 409),
)
def cancel_study(study_id: str, store: StoreDep) -> StudyOut:
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
def delete_study(study_id: str, store: StoreDep) -> Response:
    """Delete a study with its cells, trials, epochs and Optuna studies.

    Raises:
        NotFoundError: No such study (404).
        ConflictError: The study is running; cancel it first (409).
    """
    store.delete_study(study_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
