"""A study's robustness report in JSON, Markdown, HTML, PNG or SVG."""

from __future__ import annotations

import enum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from service.auth import ReadAccess, StoreDep
from service.errors import error_responses
from service.params import StudyId

router = APIRouter(
    prefix="/studies/{study_id}/report",
    tags=["reports"],
    dependencies=[ReadAccess],
    responses=error_responses(401, 403, 404, 422, 503),
)


class ReportFormat(enum.StrEnum):
    """Formats a report renders to."""

    JSON = "json"
    MD = "md"
    HTML = "html"
    PNG = "png"
    SVG = "svg"


MEDIA_TYPES: dict[ReportFormat, str] = {
    ReportFormat.JSON: "application/json",
    ReportFormat.MD: "text/markdown; charset=utf-8",
    ReportFormat.HTML: "text/html; charset=utf-8",
    ReportFormat.PNG: "image/png",
    ReportFormat.SVG: "image/svg+xml",
}

_CONTENT: dict[str, Any] = {
    MEDIA_TYPES[ReportFormat.JSON]: {"schema": {"type": "object"}},
    "text/markdown": {"schema": {"type": "string"}},
    "text/html": {"schema": {"type": "string"}},
    "image/png": {"schema": {"type": "string", "format": "binary"}},
    "image/svg+xml": {"schema": {"type": "string"}},
}


def render_report(store: Any, study_id: str, fmt: ReportFormat, baseline: str) -> bytes:
    """Build and render the study's report.

    Raises:
        NotFoundError: No such study.
    """
    from studies.report import build_report, render

    store.get_study(study_id)
    rendered = render(build_report(store, study_id, baseline=baseline), str(fmt))
    return rendered.encode("utf-8") if isinstance(rendered, str) else rendered


@router.get(
    "",
    summary="The study's learning-rate robustness report",
    response_class=Response,
    responses={200: {"description": "The rendered report.", "content": _CONTENT}},
)
def get_report(
    study_id: StudyId,
    store: StoreDep,
    format: Annotated[ReportFormat, Query(description="Output format.")] = ReportFormat.JSON,
    baseline: Annotated[str, Query(description="Optimizer the others are compared with.")] = (
        "adamw"
    ),
) -> Response:
    """Render the report from the trials recorded so far (partial while running).

    Raises:
        NotFoundError: No such study (404).
    """
    body = render_report(store, study_id, format, baseline)
    return Response(content=body, media_type=MEDIA_TYPES[format])
