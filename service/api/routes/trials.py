"""A study's trials: the listing (running ones first) and one trial with its epochs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from labcore.outcomes import Outcome
from service.auth import ReadAccess, StoreDep
from service.errors import error_responses
from service.params import CellIdQuery, Offset, StudyId, TrialId
from service.schemas import Page, TrialOut, TrialState

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
    state: Annotated[
        TrialState | None, Query(description="Only `running` or only `finished` trials.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Offset = 0,
) -> Page[TrialOut]:
    """Return a page of the study's trials: running ones first, then finished ones.

    Running trials come earliest start first, finished ones oldest first.
    A running trial has ``state: running``, its ``started_at`` and latest epoch, and no
    ``outcome``; filtering by ``outcome`` lists finished trials only.

    Raises:
        NotFoundError: No such study (404).
    """
    store.get_study(study_id)
    running = []
    if state != "finished" and outcome is None:
        running = [r for r in store.list_running(study_id) if cell_id in (None, r.cell_id)]
    items = [TrialOut.from_running(r) for r in running[offset : offset + limit]]
    total = len(running)
    if state != "running":
        room = limit - len(items)
        finished, n_finished = store.list_trials(
            study_id,
            cell_id=cell_id,
            outcome=str(outcome) if outcome else None,
            limit=max(room, 1),
            offset=max(0, offset - len(running)),
        )
        items.extend(TrialOut.from_record(t) for t in finished[: max(room, 0)])
        total += n_finished
    return Page[TrialOut](items=items, total=total, limit=limit, offset=offset)


@router.get("/{trial_id}", summary="One trial with its per-epoch metrics")
def get_trial(study_id: StudyId, trial_id: TrialId, store: StoreDep) -> TrialOut:
    """Return one trial of the study, epochs included.

    Raises:
        NotFoundError: No such study or trial (404).
    """
    return TrialOut.from_record(store.get_trial(study_id, trial_id), with_epochs=True)
