"""The project's one error hierarchy.

Every error the engine, the store or the service raises on purpose derives from
:class:`LabError`. The service maps each class to an HTTP status in one place
(``service/errors.py``); the CLI prints the message. Optimizer constructors keep
PyTorch's convention and raise the built-in :class:`ValueError`.
"""

from __future__ import annotations


class LabError(Exception):
    """Base class of every deliberate error in VRAdam Lab."""


class SpecError(LabError):
    """A study definition or request is invalid.

    Attributes:
        errors: One ``(field_path, message)`` pair per problem, where the path is
            dotted with list indices, e.g. ``optimizers.1.fixed.beta3``.
    """

    def __init__(self, errors: list[tuple[str, str]] | str, *, field: str = "") -> None:
        if isinstance(errors, str):
            errors = [(field, errors)]
        self.errors: list[tuple[str, str]] = list(errors)
        super().__init__("; ".join(f"{path}: {msg}" if path else msg for path, msg in self.errors))


class NotFoundError(LabError):
    """A named resource (study, trial, task, optimizer, token) does not exist."""


class ConflictError(LabError):
    """The request conflicts with the resource's state (e.g. deleting a running study)."""


class AuthenticationError(LabError):
    """No API token, or an unknown or revoked one."""


class PermissionDeniedError(LabError):
    """The API token is valid but lacks the right for this request."""


class StoreError(LabError):
    """The database is unreachable or its schema is not what this version expects."""


class TrialError(LabError):
    """A trial failed with an exception (not a divergence, which is a result)."""
