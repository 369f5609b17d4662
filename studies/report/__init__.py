"""Learning-rate robustness reports: how robust is each optimizer to its learning rate?

API:
    ``analyze(trials, spec, baseline="adamw", partial=False) -> Report`` (pure, no database);
    ``build_report(store, study_id, baseline="adamw") -> Report`` (reads the store);
    ``render(report, fmt)`` for ``json``, ``md``, ``html`` (str) and ``png``, ``svg`` (bytes);
    ``write_report(report, out_dir) -> {fmt: path}``; ``report_json_schema()``;
    ``select_for_confirmation(spec, trials_of_cell) -> hparams | None`` (the engine's
    confirmation phase: which configuration of a cell to re-run on fresh seeds).

Definitions of every figure: ``docs/report.md``. Units: :mod:`studies.report.model`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from studies.report.analysis import analyze
from studies.report.confirm import select_for_confirmation
from studies.report.loader import build_report, load_trials
from studies.report.model import Report, report_json_schema

Format = Literal["json", "md", "html", "png", "svg"]
FORMATS: tuple[str, ...] = ("json", "md", "html", "png", "svg")
MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "png": "image/png",
    "svg": "image/svg+xml",
}


def render(report: Report, fmt: str = "json") -> str | bytes:
    """Render ``report`` as ``json``, ``md`` or ``html`` (str), or ``png`` or ``svg`` (bytes).

    Raises:
        ValueError: ``fmt`` is not one of :data:`FORMATS`.
    """
    if fmt == "json":
        return report.model_dump_json(indent=2)
    if fmt == "md":
        from studies.report.render_md import render_markdown

        return render_markdown(report)
    if fmt == "html":
        from studies.report.render_html import render_html

        return render_html(report)
    if fmt in ("png", "svg"):
        from studies.report.render_plot import figure_bytes

        return figure_bytes(report, fmt)  # type: ignore[arg-type]
    raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")


def write_report(report: Report, out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.{json,md,html,png,svg}`` into ``out_dir`` (created if needed).

    Returns:
        The path of each written file by format.

    Raises:
        OSError: The directory or a file cannot be written.
    """
    from studies.report.render_html import render_html
    from studies.report.render_plot import figure_bytes

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    svg = figure_bytes(report, "svg")
    contents: dict[str, str | bytes] = {
        "json": render(report, "json"),
        "md": render(report, "md"),
        "html": render_html(report, svg=svg),
        "png": figure_bytes(report, "png"),
        "svg": svg,
    }
    paths = {}
    for fmt, data in contents.items():
        path = out / f"report.{fmt}"
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data, encoding="utf-8")
        paths[fmt] = path
    return paths


__all__ = [
    "FORMATS",
    "MEDIA_TYPES",
    "Report",
    "analyze",
    "build_report",
    "load_trials",
    "render",
    "report_json_schema",
    "select_for_confirmation",
    "write_report",
]
