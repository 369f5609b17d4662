"""Optimizers an operator could enable as plugins (``VRADAM_LAB_PLUGINS``), for the tests."""

from __future__ import annotations

from typing import Any

import torch

IMPORTED = True  # a test checks whether this module was imported at all


class PluginSGD(torch.optim.SGD):
    """Plain SGD under another name: an enabled plugin that works."""


class ExitingOptimizer(torch.optim.SGD):
    """A plugin whose constructor asks the interpreter to exit (as ``sys.exit`` does)."""

    def __init__(self, params: Any, **kwargs: Any) -> None:
        raise SystemExit("this optimizer asked the process to exit")
