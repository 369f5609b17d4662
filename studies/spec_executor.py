"""The study's ``executor`` section: which executor, and what each trial reserves on Ray.

Part of :mod:`studies.spec` (re-exported there). Which Ray cluster runs the trials is the
worker's setting, never the study's; a study only says what one trial needs: CPUs, GPUs
(fractions share a GPU) and custom resources that operators give their nodes (``ray start
--resources '{"gpu_node": 1}'``), which pin trials to the nodes that have them.
"""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Ray's own resources, and names with a colon (``node:<ip>``, ``accelerator_type:...``),
# are not custom resources: a study reserves CPUs and GPUs by their own fields and never
# names a node.
_RESERVED = {"cpu", "gpu", "memory", "object_store_memory"}
_CUSTOM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
MAX_CUSTOM_RESOURCES = 8


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ResourcesSpec(_Frozen):
    """Per-trial resources on Ray (fractional GPUs allowed)."""

    cpu: float = Field(default=1.0, gt=0)
    gpu: float = Field(default=0.0, ge=0)
    custom: dict[str, float] = Field(
        default_factory=dict,
        description="Custom Ray resources per trial (`{gpu_node: 0.5}`): trials run only on "
        "nodes started with them. Amounts above 1 must be whole numbers (Ray's rule).",
    )

    @field_validator("custom")
    @classmethod
    def _custom(cls, v: dict[str, float]) -> dict[str, float]:
        if len(v) > MAX_CUSTOM_RESOURCES:
            raise ValueError(f"at most {MAX_CUSTOM_RESOURCES} custom resources, got {len(v)}")
        for name, amount in v.items():
            if not _CUSTOM_NAME.fullmatch(name) or name.lower() in _RESERVED:
                raise ValueError(
                    f"{name!r} is not a custom resource name (letters, digits, `_.-`, at most "
                    "64; not CPU, GPU, memory or a `node:` address: use `cpu`/`gpu`)"
                )
            if not (math.isfinite(amount) and amount > 0):
                raise ValueError(f"custom resource {name!r} needs an amount > 0, got {amount}")
            if amount > 1 and not float(amount).is_integer():
                raise ValueError(
                    f"custom resource {name!r}: an amount above 1 must be whole, got {amount:g}"
                )
        return v


class ExecutorSpec(_Frozen):
    """Where trials run. Which Ray cluster is the worker's setting, never the study's."""

    name: Literal["local", "ray"] = "local"
    resources_per_trial: ResourcesSpec = Field(default_factory=ResourcesSpec)
    max_concurrent: int | None = Field(
        default=None,
        ge=1,
        description="Trials at a time; omitted: 1 on `local`, and on `ray` as many as the "
        "cluster's CPUs (and GPUs) hold at `resources_per_trial`, at most the batch's trials.",
    )

    @model_validator(mode="after")
    def _custom_needs_ray(self) -> ExecutorSpec:
        if self.name != "ray" and self.resources_per_trial.custom:
            raise ValueError(
                "`resources_per_trial.custom` needs the `ray` executor (the local executor "
                "runs every trial on this machine)"
            )
        return self
