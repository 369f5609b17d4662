"""Plumbing shared by the data-backed tasks: options, seeds, data directories.

Torch is imported lazily inside the functions that need it, so this module is cheap
to import.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from labcore.errors import LabError, NotFoundError, SpecError

if TYPE_CHECKING:
    import torch


class DataFormatError(LabError):
    """A data file exists but is not in the expected format (truncated, bad header, ...)."""


# Distinct salts keep the streams of one seed (init, order, augmentation) independent.
SALT_ORDER = 1
SALT_AUGMENT = 2


def resolve_options(
    task: str, defaults: Mapping[str, Any], given: Mapping[str, Any]
) -> dict[str, Any]:
    """Merge ``given`` task options over ``defaults``, rejecting unknown names.

    Args:
        task: Task name, for the error message.
        defaults: Every option the task knows, with its default.
        given: Options passed by the user (a study, ``create_task``).

    Returns:
        A new dict with every known option.

    Raises:
        SpecError: For an option the task does not know, naming the known ones.
    """
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        known = ", ".join(sorted(defaults))
        raise SpecError(
            [(f"options.{k}", f"unknown option for task {task!r}; known: {known}") for k in unknown]
        )
    return {**defaults, **given}


def check_positive_int(options: Mapping[str, Any], *names: str, allow_none: bool = False) -> None:
    """Check that each named option is a positive integer (or ``None`` if allowed).

    Raises:
        SpecError: Naming every invalid option.
    """
    errors = []
    for name in names:
        value = options[name]
        if value is None and allow_none:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            what = "a positive integer" + (" or null" if allow_none else "")
            errors.append((f"options.{name}", f"must be {what}, got {value!r}"))
    if errors:
        raise SpecError(errors)


def derive_seed(seed: int, *keys: int) -> int:
    """Return a 63-bit seed derived from ``seed`` and ``keys`` (e.g. epoch, salt).

    Uses NumPy's ``SeedSequence``, so nearby inputs give unrelated streams.
    """
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *(int(k) for k in keys)])
    return int(state.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def torch_generator(seed: int, *keys: int) -> torch.Generator:
    """Return a CPU ``torch.Generator`` seeded by :func:`derive_seed`."""
    import torch

    return torch.Generator().manual_seed(derive_seed(seed, *keys))


@contextlib.contextmanager
def seeded_init(seed: int) -> Iterator[None]:
    """Seed torch's global CPU RNG for model construction, restoring it afterwards.

    Layers initialise from the global RNG; forking keeps ``build_model(seed)``
    deterministic without disturbing the caller's RNG state.
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def find_data_dir(
    data_dir: str | Path | None, task: str, required: Sequence[str], subdirs: Sequence[str]
) -> Path:
    """Locate the folder holding ``required`` files: ``data_dir`` or one of its ``subdirs``.

    Args:
        data_dir: The user's data directory.
        task: Task name, for the error message.
        required: File names that must all be present.
        subdirs: Sub-folders tried after ``data_dir`` itself (the names archives unpack to).

    Returns:
        The first candidate folder that holds every required file.

    Raises:
        NotFoundError: If ``data_dir`` is unset or no candidate holds all the files;
            the message names the folders tried and the files missing.
    """
    if data_dir is None:
        raise NotFoundError(
            f"task {task!r} needs a data directory holding {', '.join(required)}; "
            "set data_dir (the CLI can download some datasets on request)"
        )
    root = Path(data_dir).expanduser()
    candidates = [root, *(root / s for s in subdirs)]
    for folder in candidates:
        if all((folder / name).is_file() for name in required):
            return folder
    best = max(candidates, key=lambda c: sum((c / name).is_file() for name in required))
    missing = [name for name in required if not (best / name).is_file()]
    tried = ", ".join(str(c) for c in candidates)
    raise NotFoundError(
        f"task {task!r}: data not found (tried {tried}); missing in {best}: {', '.join(missing)}"
    )


def model_device(model: torch.nn.Module) -> torch.device:
    """Return the device of the model's first parameter (CPU for a parameterless model)."""
    import torch

    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def classification_metrics(
    model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int
) -> dict[str, float]:
    """Return ``{"loss", "acc"}`` (mean cross-entropy, accuracy) of ``model`` in eval mode.

    Batches of ``batch_size`` move to the model's device; sums accumulate on the device (one
    host read at the end). The model's train/eval mode is restored.
    """
    import torch
    import torch.nn.functional as F

    device = model_device(model)
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    try:
        with torch.no_grad():
            for i in range(0, len(images), batch_size):
                x = images[i : i + batch_size].to(device, non_blocking=True)
                y = labels[i : i + batch_size].to(device, non_blocking=True)
                logits = model(x)
                total += F.cross_entropy(logits, y, reduction="sum").double()
                correct += (logits.argmax(dim=1) == y).sum()
    finally:
        model.train(was_training)
    n = len(images)
    return {"loss": float(total) / n, "acc": int(correct) / n}
