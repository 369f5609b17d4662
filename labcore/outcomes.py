"""How a trial ended: the one definition every layer uses."""

from __future__ import annotations

import enum


class Outcome(enum.StrEnum):
    """How a trial ended. Only ``FAILED`` is retried; ``DIVERGED`` is a result.

    A ``StrEnum``: members compare equal to their stored strings (``"complete"``...).
    """

    COMPLETE = "complete"
    DIVERGED = "diverged"
    PRUNED = "pruned"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        """Whether this outcome is a result (never retried): every outcome but ``FAILED``."""
        return self is not Outcome.FAILED

    @property
    def scored(self) -> bool:
        """Whether the trial has an objective value that summaries use (complete, diverged)."""
        return self in (Outcome.COMPLETE, Outcome.DIVERGED)

    @classmethod
    def finals(cls) -> frozenset[Outcome]:
        """Every final outcome (for SQL ``IN`` filters)."""
        return frozenset(o for o in cls if o.final)
