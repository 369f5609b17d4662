"""The trust boundary: what a study definition may make a worker do.

A study submitted through the API comes from anyone with a write token, so it names only
registered tasks and optimizers, and data folders only by a name under the worker's data
root. The operator widens this on purpose:

* ``plugins``: optimizer import strings (``package.module:Class``) the operator installed
  and enabled (``VRADAM_LAB_PLUGINS``); nothing else is ever imported because a study
  said so. The check runs before any import.
* ``data_root``: the folder every ``data_dir`` (and every path-valued task option, one
  whose name ends in ``_dir`` or ``_path``) is resolved under; ``..`` and absolute paths
  are refused, and a symbolic link that leads outside the root is refused when resolved.

``vradam-hpo run`` runs your own definition on your own machine: it uses
:data:`LOCAL` (any import string, any path, relative to the working directory). Machine
choices that are not the study's to make (the Ray cluster's address) are never read from
a definition at all: they are the worker's settings.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from labcore.errors import SpecError
from studies.spec import StudySpec

Errors = list[tuple[str, str]]


def is_path_option(name: str) -> bool:
    """Whether a task option holds a filesystem path (by the naming convention)."""
    return name == "data_dir" or name.endswith(("_dir", "_path"))


@dataclass(frozen=True)
class Trust:
    """What definitions may ask of this process.

    Attributes:
        plugins: Optimizer import strings the operator enabled.
        any_import: Any import string may run (the CLI's local ``run`` only).
        data_root: Where data folders are resolved (``None``: the working directory).
        any_path: Absolute and ``..`` paths are allowed (the CLI's local ``run`` only).
    """

    plugins: frozenset[str] = field(default_factory=frozenset)
    any_import: bool = False
    data_root: Path | None = None
    any_path: bool = False

    @classmethod
    def service(cls, plugins: Collection[str] = (), data_root: Path | None = None) -> Trust:
        """The API's and the service worker's boundary."""
        return cls(plugins=frozenset(plugins), data_root=data_root)

    def check(self, spec: StudySpec) -> Errors:
        """Every way ``spec`` crosses this boundary, as ``(field path, message)`` pairs."""
        errors: Errors = []
        for i, o in enumerate(spec.optimizers):
            if ":" in o.name and not self.any_import and o.name not in self.plugins:
                errors.append(
                    (
                        f"optimizers.{i}.name",
                        f"{o.name!r} is not a registered optimizer; import strings run only "
                        "when the operator enables them as plugins (VRADAM_LAB_PLUGINS)",
                    )
                )
        if self.any_path:
            return errors
        for i, t in enumerate(spec.tasks):
            if t.data_dir is not None:
                _check_name(t.data_dir, f"tasks.{i}.data_dir", errors)
            for name, value in t.options.items():
                if is_path_option(name) and value is not None:
                    _check_name(value, f"tasks.{i}.options.{name}", errors)
        return errors

    def resolve(self, spec: StudySpec) -> StudySpec:
        """A copy of ``spec`` whose data paths are absolute (resolved before dispatch).

        Trials may run in another working directory (Ray Tune moves each trial into its
        own), so relative paths never travel.

        Raises:
            SpecError: A path leaves the data root (through a symbolic link, say).
        """
        root = (self.data_root or Path.cwd()).resolve()
        errors: Errors = []
        tasks: list[dict[str, Any]] = []
        for i, t in enumerate(spec.tasks):
            entry = t.model_dump(mode="json")
            if t.data_dir is not None:
                entry["data_dir"] = self._resolve(root, t.data_dir, f"tasks.{i}.data_dir", errors)
            for name, value in t.options.items():
                if is_path_option(name) and isinstance(value, str):
                    path = f"tasks.{i}.options.{name}"
                    entry["options"][name] = self._resolve(root, value, path, errors)
            tasks.append(entry)
        if errors:
            raise SpecError(errors)
        return StudySpec.model_validate({**spec.to_dict(), "tasks": tasks})

    def _resolve(self, root: Path, value: str, path: str, errors: Errors) -> str:
        full = (root / Path(value).expanduser()).resolve()
        if not self.any_path and not full.is_relative_to(root):
            errors.append((path, "leads outside the data root"))
        return str(full)


def _check_name(value: Any, path: str, errors: Errors) -> None:
    if not isinstance(value, str) or not value.strip():
        errors.append((path, "must be a folder name under the data root"))
        return
    parts = PurePosixPath(value.replace("\\", "/")).parts
    if PurePosixPath(value).is_absolute() or value.startswith(("~", "\\")) or ".." in parts:
        errors.append(
            (path, f"{value!r} must be a relative name under the data root (no '..', no '/')")
        )


LOCAL = Trust(any_import=True, any_path=True)
"""``vradam-hpo run`` on one's own machine: one's own code and paths."""
