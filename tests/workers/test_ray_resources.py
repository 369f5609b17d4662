"""Trials whose resources no node has fail loudly instead of waiting forever in Tune."""

from __future__ import annotations

import time

import pytest

from tests.workers.test_executors import FAKE, req
from workers.executors.ray_resources import (
    ResourcesUnavailable,
    describe,
    fits,
    wait_until_placeable,
)

CPU_NODE = {"CPU": 2.0, "memory": 1e9}
GPU_NODE = {"CPU": 8.0, "GPU": 2.0}


def test_fits_needs_one_node_with_everything() -> None:
    assert fits({"CPU": 1, "GPU": 0}, [CPU_NODE])
    assert not fits({"CPU": 1, "GPU": 1}, [CPU_NODE])
    assert fits({"CPU": 1, "GPU": 1}, [CPU_NODE, GPU_NODE])
    assert not fits({"CPU": 4, "GPU": 4}, [CPU_NODE, GPU_NODE])  # 2 GPUs at most per node
    assert not fits({"CPU": 3, "GPU": 0}, [CPU_NODE, {"CPU": 1.0}])  # no pooling across nodes


def test_describe_names_the_request_and_the_nodes() -> None:
    text = describe({"CPU": 1, "GPU": 4}, [CPU_NODE, GPU_NODE])
    assert (
        text
        == "a trial asks for CPU=1, GPU=4; the cluster's nodes have [CPU=2, GPU=0; CPU=8, GPU=2]"
    )


def test_a_cluster_that_cannot_grow_fails_at_once() -> None:
    with pytest.raises(ResourcesUnavailable, match=r"can never be placed.*GPU=4"):
        wait_until_placeable(
            {"CPU": 1, "GPU": 4}, can_grow=False, wait_s=60, nodes=lambda: [CPU_NODE]
        )


def test_a_growing_cluster_waits_and_says_why_then_goes_on_when_a_node_joins() -> None:
    joined_at = time.monotonic() + 0.3
    said: list[str | None] = []

    def nodes() -> list[dict[str, float]]:
        return [CPU_NODE, GPU_NODE] if time.monotonic() >= joined_at else [CPU_NODE]

    wait_until_placeable(
        {"CPU": 1, "GPU": 1},
        can_grow=True,
        wait_s=10,
        on_wait=said.append,
        nodes=nodes,
        poll_s=0.05,
    )
    assert len(said) == 2 and said[0].startswith("waiting for a node with the resources")
    assert said[1] is None  # the wait is over: the note is cleared


def test_a_growing_cluster_gives_up_after_the_wait() -> None:
    t0 = time.monotonic()
    with pytest.raises(ResourcesUnavailable, match="no node joined within 0 s"):
        wait_until_placeable(
            {"GPU": 1}, can_grow=True, wait_s=0.2, nodes=lambda: [CPU_NODE], poll_s=0.05
        )
    assert time.monotonic() - t0 < 2


@pytest.mark.ray
@pytest.mark.slow
def test_ray_run_asking_for_gpus_no_node_has_fails_within_seconds(ray_cluster: None) -> None:
    from workers.executors.ray_executor import RayExecutor

    t0 = time.monotonic()
    with RayExecutor(gpus_per_trial=4, trial_fn=FAKE) as ex:  # noqa: SIM117
        with pytest.raises(ResourcesUnavailable, match="GPU=4"):
            list(ex.run([req(0)]))
    assert time.monotonic() - t0 < 30


@pytest.mark.ray
def test_a_trial_that_reserved_a_gpu_never_runs_on_the_cpu_silently() -> None:
    import torch

    from workers.executors.ray_executor import _gpu_device

    assert _gpu_device(0.0) == (None, None)  # CPU trials pick their device as usual
    device, error = _gpu_device(0.5)
    if torch.cuda.is_available():
        assert device == "cuda" and error is None
    else:
        assert device is None and error is not None
        assert error.startswith("the trial asked for 0.5 GPU but this worker's torch")


def test_custom_resources_count_like_any_other() -> None:
    gpu_node = {**CPU_NODE, "gpu_node": 1.0}
    assert fits({"CPU": 1, "gpu_node": 0.5}, [CPU_NODE, gpu_node])
    assert not fits({"CPU": 1, "gpu_node": 0.5}, [CPU_NODE])
    assert "gpu_node=0.5" in describe({"CPU": 1, "gpu_node": 0.5}, [CPU_NODE])


def test_custom_resources_may_not_shadow_rays_own() -> None:
    from workers.executors.ray_executor import RayExecutor

    for bad in ({"GPU": 1.0}, {"cpu": 1.0}, {"gpu_node": 0.0}):
        with pytest.raises(ValueError, match="custom resources"):
            RayExecutor(custom_resources=bad)


@pytest.mark.ray
@pytest.mark.slow
def test_ray_run_asking_for_a_custom_resource_no_node_has_fails_at_once(
    ray_cluster: None,
) -> None:
    from workers.executors.ray_executor import RayExecutor

    t0 = time.monotonic()
    with RayExecutor(custom_resources={"gpu_node": 0.5}, trial_fn=FAKE) as ex:  # noqa: SIM117
        with pytest.raises(ResourcesUnavailable, match=r"gpu_node=0\.5"):
            list(ex.run([req(0)]))
    assert time.monotonic() - t0 < 30
