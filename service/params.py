"""Path and query parameters shared by the routes, bounded to what the database stores.

Ids are 32-bit integer columns and study ids short strings; a value outside those ranges
is refused with 422 by validation instead of reaching the database (where SQLite raises
``OverflowError`` above 2^63 and PostgreSQL rejects NUL bytes in text: a 500 either way).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

StudyId = Annotated[
    str,
    Path(
        description="The study's id.",
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_\-]+$",
    ),
]
TrialId = Annotated[int, Path(description="The trial's id.", ge=0, le=INT32_MAX)]
CellIdQuery = Annotated[
    int | None, Query(description="Only this cell's trials.", ge=0, le=INT32_MAX)
]
Offset = Annotated[int, Query(description="Items to skip.", ge=0, le=INT64_MAX)]
