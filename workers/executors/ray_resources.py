"""Whether a Ray cluster can place a trial's resources, and waiting until it can.

Ray Tune waits forever, silently, for resources no node has. Before a run starts the
executor checks every alive node: if one can hold a trial (its CPUs, GPUs and custom
resources), the run goes ahead. If none can, the request cannot be satisfied *now*: a
cluster that other nodes may join (one we connected to by address) is given
``wait_s`` seconds, reported through ``on_wait``; a local Ray started for this run never
grows, so it fails at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence

from labcore.errors import LabError

logger = logging.getLogger(__name__)


class ResourcesUnavailable(LabError):
    """No node of the Ray cluster can hold one trial's resources."""


def node_capacities() -> list[dict[str, float]]:
    """Total resources of each alive node of the connected Ray cluster."""
    import ray

    return [dict(n.get("Resources", {})) for n in ray.nodes() if n.get("Alive")]


def fits(request: Mapping[str, float], nodes: Sequence[Mapping[str, float]]) -> bool:
    """Whether some node has at least ``request`` of every resource."""
    need = {k: v for k, v in request.items() if v > 0}
    return any(all(node.get(k, 0.0) >= v for k, v in need.items()) for node in nodes)


def describe(request: Mapping[str, float], nodes: Sequence[Mapping[str, float]]) -> str:
    """One line: what a trial asks for and what the largest nodes have."""
    want = ", ".join(f"{k}={v:g}" for k, v in sorted(request.items()) if v > 0)
    have = "; ".join(
        ", ".join(f"{k}={node.get(k, 0.0):g}" for k in sorted(request) if request[k] > 0)
        for node in nodes
    )
    return f"a trial asks for {want}; the cluster's nodes have [{have or 'no nodes'}]"


def wait_until_placeable(
    request: Mapping[str, float],
    *,
    can_grow: bool,
    wait_s: float,
    on_wait: Callable[[str | None], None] | None = None,
    nodes: Callable[[], list[dict[str, float]]] = node_capacities,
    poll_s: float = 1.0,
) -> None:
    """Return once some node can hold ``request``; raise when none will in time.

    Args:
        request: Per-trial resources (``{"CPU": 1, "GPU": 4}``).
        can_grow: Whether nodes may still join (a cluster reached by address).
        wait_s: How long to wait for such a node.
        on_wait: Told the reason once when the wait starts, and ``None`` when a node
            joined (``None``: logged only).
        nodes: Reads the alive nodes' capacities.
        poll_s: Seconds between checks.

    Raises:
        ResourcesUnavailable: No node can hold a trial, and none joined within ``wait_s``
            (at once when the cluster cannot grow).
    """
    current = nodes()
    if fits(request, current):
        return
    reason = describe(request, current)
    if not can_grow:
        raise ResourcesUnavailable(f"these resources can never be placed: {reason}")
    logger.warning("waiting up to %.0f s for a node: %s", wait_s, reason)
    if on_wait is not None:
        on_wait(f"waiting for a node with the resources: {reason}")
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        time.sleep(poll_s)
        current = nodes()
        if fits(request, current):
            if on_wait is not None:
                on_wait(None)
            return
    raise ResourcesUnavailable(
        f"no node joined within {wait_s:.0f} s: {describe(request, current)}"
    )
