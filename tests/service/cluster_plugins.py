"""Optimizers for the cluster rehearsal: each trial records where Ray ran it.

Enabled as plugins (``VRADAM_LAB_PLUGINS``). When a trial builds its optimizer it writes one
JSON file under ``$VRADAM_REHEARSAL_DIR``: the node id Ray ran it on
(``ray.get_runtime_context().get_node_id()``), the resources Ray assigned it, and whether
that node, by Ray's own node table, carries the ``gpu_node`` resource.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import torch

STEP_SLEEP_S = 0.25  # SlowNodeSGD: long enough to kill a node under a running trial


def _record(kind: str, lr: float) -> None:
    import ray

    ctx = ray.get_runtime_context()
    node = ctx.get_node_id()
    table = {n["NodeID"]: n.get("Resources", {}) for n in ray.nodes()}
    rec = {
        "kind": kind,
        "lr": lr,
        "node": node,
        "node_has_gpu_node": "gpu_node" in table.get(node, {}),
        "assigned": ctx.get_assigned_resources(),
        "pid": os.getpid(),
        "t": time.time(),
    }
    out = Path(os.environ["VRADAM_REHEARSAL_DIR"])
    tmp = out / f".{uuid.uuid4().hex}.tmp"
    tmp.write_text(json.dumps(rec))
    tmp.rename(out / f"{uuid.uuid4().hex}.json")  # readers never see half a record


class NodeSGD(torch.optim.SGD):
    """Plain SGD that records the Ray node it runs on."""

    def __init__(self, params: Any, lr: float = 0.01, **kwargs: Any) -> None:
        super().__init__(params, lr=lr, **kwargs)
        _record(type(self).__name__, lr)


class SlowNodeSGD(NodeSGD):
    """:class:`NodeSGD` whose steps take :data:`STEP_SLEEP_S` seconds."""

    def step(self, closure: Any = None) -> Any:
        time.sleep(STEP_SLEEP_S)
        return super().step(closure)


def records(folder: Path) -> list[dict[str, Any]]:
    """Every record written so far."""
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
