"""Trials as flat rows: what ``Client.trials_dataframe`` and ``vradam-hpo trials --csv`` give.

One row per trial; nested fields are spread into columns the way Optuna's
``trials_dataframe`` does (``params_lr``), so a pandas user finds what they expect.
pandas is optional (``pip install 'vradam-lab[pandas]'``); the CSV needs only the stdlib.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from service.schemas import TrialOut

PANDAS_HINT = (
    "Client.trials_dataframe needs pandas, an optional extra: pip install 'vradam-lab[pandas]'"
)
_SCALARS = (
    "id", "study_id", "cell_id", "task", "optimizer", "key", "seed", "outcome", "value",
    "diverged_at_step", "wall_time_s", "attempts", "error", "optuna_trial_number",
    "finished_at",
)  # fmt: skip


def trial_rows(trials: Sequence[TrialOut]) -> list[dict[str, Any]]:
    """Flatten trials: scalar fields, then ``params_*``, ``metrics_*``, ``initial_*``, ``elr_*``.

    Every row has every column (missing values are ``None``), in a stable order.
    """
    rows: list[dict[str, Any]] = []
    extra: dict[str, None] = {}
    for t in trials:
        row: dict[str, Any] = {k: getattr(t, k) for k in _SCALARS}
        row["outcome"] = str(t.outcome)
        for prefix, values in (
            ("params_", t.hparams),
            ("metrics_", t.metrics),
            ("initial_", t.initial_metrics),
            ("elr_", t.effective_lr),
        ):
            for name in sorted(values):
                row[prefix + name] = values[name]
                extra.setdefault(prefix + name)
        rows.append(row)
    columns = [*_SCALARS, *extra]
    return [{c: row.get(c) for c in columns} for row in rows]


def trials_csv(trials: Sequence[TrialOut]) -> str:
    """The rows of :func:`trial_rows` as CSV text with a header line."""
    rows = trial_rows(trials)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else list(_SCALARS))
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buf.getvalue()


def trials_frame(trials: Sequence[TrialOut]) -> Any:
    """The rows of :func:`trial_rows` as a ``pandas.DataFrame`` (``finished_at`` as UTC datetimes).

    Raises:
        ImportError: pandas is not installed, naming the extra to install.
    """
    try:
        import pandas as pd
    except ImportError as e:
        raise ImportError(PANDAS_HINT) from e
    rows = trial_rows(trials)
    frame = pd.DataFrame(rows, columns=list(rows[0]) if rows else list(_SCALARS))
    frame["finished_at"] = pd.to_datetime(frame["finished_at"], utc=True)
    return frame
