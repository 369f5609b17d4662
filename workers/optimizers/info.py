"""Registry records for optimizers: hyperparameters with defaults and valid ranges.

Torch-free, so that ``studies`` can validate a study definition before anything runs.
Hyperparameters use shared names across optimizers (``lr``, ``weight_decay``,
``beta1``, ``beta2``, ``eps``, ``momentum``, ...), so one search space serves every
optimizer; each entry maps the shared names to its constructor's arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class HParam:
    """One hyperparameter of an optimizer.

    Attributes:
        name: Shared name (``lr``, ``beta1``, ...).
        default: Value used when a study neither fixes nor searches it.
        low: Smallest valid value (inclusive), or ``None`` for unbounded.
        high: Largest valid value, or ``None`` for unbounded.
        high_inclusive: Whether ``high`` itself is valid (``beta1 < 1``: False).
        kind: ``"float"``, ``"int"``, ``"bool"`` or ``"choice"``.
        choices: Valid values for ``kind == "choice"``.
        log: Whether the natural search scale is logarithmic.
        doc: One line for catalogs.
    """

    name: str
    default: Any
    low: float | None = None
    high: float | None = None
    high_inclusive: bool = True
    kind: str = "float"
    choices: tuple[Any, ...] = ()
    log: bool = False
    doc: str = ""

    def check(self, value: Any) -> str | None:
        """Return a message describing why ``value`` is invalid, or ``None`` if valid."""
        if self.kind == "bool":
            return None if isinstance(value, bool) else f"must be a boolean, got {value!r}"
        if self.kind == "choice":
            return (
                None
                if value in self.choices
                else f"must be one of {list(self.choices)}, got {value!r}"
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be a number, got {value!r}"
        if self.kind == "int" and int(value) != value:
            return f"must be an integer, got {value!r}"
        if self.low is not None and value < self.low:
            return f"must be >= {self.low}, got {value!r}"
        if self.high is not None:
            if self.high_inclusive and value > self.high:
                return f"must be <= {self.high}, got {value!r}"
            if not self.high_inclusive and value >= self.high:
                return f"must be < {self.high}, got {value!r}"
        return None


@dataclass(frozen=True)
class OptimizerInfo:
    """A registry record for one optimizer.

    Attributes:
        name: Registry name (``vradam``, ``adamw``, ...).
        import_path: ``"package.module:Class"`` of the ``torch.optim.Optimizer``.
        hparams: The hyperparameters a study may fix or search, by shared name.
        description: One line for catalogs.
        extra_kwargs: Constructor arguments always passed (e.g. ``nesterov=True``).
        open_hparams: True for a user's optimizer named by import string: its
            hyperparameters are not declared, so any name is passed through unchecked.
    """

    name: str
    import_path: str
    hparams: tuple[HParam, ...]
    description: str = ""
    extra_kwargs: Mapping[str, Any] = field(default_factory=dict)
    open_hparams: bool = False

    def hparam(self, name: str) -> HParam | None:
        """Return the hyperparameter called ``name``, or ``None``."""
        return next((h for h in self.hparams if h.name == name), None)

    def defaults(self) -> dict[str, Any]:
        """Return ``{name: default}`` for every hyperparameter."""
        return {h.name: h.default for h in self.hparams}
