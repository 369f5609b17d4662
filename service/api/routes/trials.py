"""A study's trials: listing (filter by cell and outcome) and one trial with its epochs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from labcore.outcomes import Outcome
from service.auth import ReadAccess, StoreDep
from service.errors import error_responses
from service.params import CellIdQuery, Offset, StudyId, TrialId
from service.schemas import Page, TrialOut

router = APIRouter(
    prefix="/studies/{study_id}/trials",
    tags=["trials"],
    dependencies=[ReadAccess],
    # 422 here also replaces FastAPI's default HTTPValidationError: errors are ErrorBody
    responses=error_responses(401, 403, 404, 422, 503),
)


@router.get("", summary="List a study's trials")
def list_trials(
    study_id: StudyId,
    store: StoreDep,
    cell_id: CellIdQuery = None,
    outcome: Annotated[Outcome | None, Query(description="Only trials with this outcome.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> Page[TrialOut]:
    """Return a page of the study's trials, oldest first.

    Raises:
        NotFoundError: No such study (404).
    """
    store.get_study(study_id)
    items, total = store.list_trials(
        study_id,
        cell_id=cell_id,
        outcome=str(outcome) if outcome else None,
        limit=limit,
        offset=offset,
    )
    return Page[TrialOut](
        items=[TrialOut.from_record(t) for t in items], total=total, limit=limit, offset=offset
    )


@router.get("/{trial_id}", summary="One trial with its per-epoch metrics")
def get_trial(study_id: StudyId, trial_id: TrialId, store: StoreDep) -> TrialOut:
    """Return one trial of the study, epochs included.

    Raises:
        NotFoundError: No such study or trial (404).
    """
    return TrialOut.from_record(store.get_trial(study_id, trial_id), with_epochs=True)
