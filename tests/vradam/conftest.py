"""The `cuda` marker: tests that need a CUDA device are deselected (not skipped) without one.

Deselected tests are reported as such ("N deselected"), never counted as passed or skipped;
`benchmarks/gpu_check.sh` runs them on a machine with a GPU.
"""

import pytest
import torch


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cuda: needs a CUDA device (deselected without one)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    needs_cuda = [item for item in items if item.get_closest_marker("cuda")]
    if needs_cuda:
        config.hook.pytest_deselected(items=needs_cuda)
        items[:] = [item for item in items if not item.get_closest_marker("cuda")]
