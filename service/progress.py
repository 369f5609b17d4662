"""A rich progress bar that follows a study through the API (used by ``Client.wait``)."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from service.schemas import StudyOut


class StudyProgress:
    """Show ``trials done/planned``, outcome counts, elapsed time and ETA of a study.

    Args:
        enabled: When False, every method is a no-op.
        console: Where to draw (default: stderr).
    """

    def __init__(self, enabled: bool = True, console: Console | None = None) -> None:
        self.enabled = enabled
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._console = console or Console(stderr=True)

    def __enter__(self) -> StudyProgress:
        if self.enabled:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self._console,
                transient=False,
            )
            self._progress.start()
        return self

    def update(self, study: StudyOut) -> None:
        """Redraw from a fresh view of the study."""
        if self._progress is None:
            return
        detail = " ".join(f"{k}={v}" for k, v in sorted(study.counts.items()))
        description = f"{study.name} [{study.status}]"
        total = study.progress.n_planned or None
        if self._task is None:
            self._task = self._progress.add_task(description, total=total, detail=detail)
        self._progress.update(
            self._task,
            description=description,
            total=total,
            completed=study.progress.n_finished,
            detail=detail,
        )

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
