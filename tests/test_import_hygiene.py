"""Heavy imports (torch, ray) stay out of the `service` and `studies` import paths."""

import subprocess
import sys

import pytest

MODULES = [
    "studies",
    "labcore",
    "labcore.errors",
    "labcore.outcomes",
    "labcore.budget",
    "labcore.results",
    "workers.tasks.base",
    "workers.optimizers.info",
    "workers.tasks.registry",
    "workers.optimizers.registry",
    "workers.trial",
    "workers.executors",
    "studies.spec",
    "studies.store",
    "studies.engine",
    "studies.report",
    "service",
    "service.app",
    "service.client",
    "service.worker",
    "service.cli",
]


@pytest.mark.parametrize("module", MODULES)
def test_module_does_not_import_torch_or_ray(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "heavy = sorted(m for m in ('torch', 'ray') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} imports {out.stdout.strip()}"
