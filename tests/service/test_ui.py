"""``/``, ``/ui``, ``/ui/studies/{id}``, ``/docs`` and ``/redoc`` in real headless Chromium.

A real ``vradam-hpo serve`` (local mode) serves a SQLite file in which this test runs a
study of the quadratic task; its last trial is held mid-run (:mod:`tests.service.ui_trialfn`)
so the pages, the API and the CLI show a running trial beside finished ones. Chromium
resolves no host but 127.0.0.1: the docs must render from the installed assets. The
screenshots land in a temporary folder; ``VRADAM_LAB_SCREENSHOTS=docs/screenshots`` makes
the run refresh the committed ones (a plain test run leaves the tree untouched).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from service.cli import app
from studies.runner import run_study
from studies.store import SQLStore, StudyStatus
from tests.chromium import render
from tests.service import ui_trialfn
from tests.service.conftest import free_port, quadratic_spec
from tests.service.servers import serve
from workers.executors import LocalExecutor

# matplotlib's default colours of the report's first two optimizers (adamw, vradam)
CURVE_COLORS = ((0x1F, 0x77, 0xB4), (0xD6, 0x27, 0x28))


def _image(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def _not_blank(img: np.ndarray) -> float:
    """The fraction of pixels that are not near-white."""
    return float((img.sum(axis=2) < 3 * 235).mean())


def _color_pixels(img: np.ndarray, rgb: tuple[int, int, int]) -> int:
    return int((np.abs(img - np.array(rgb)).sum(axis=2) < 20).sum())


def _shrink(path: Path) -> None:
    """Keep the committed screenshots small: a 256-colour PNG."""
    Image.open(path).convert("RGB").quantize(256).save(path, optimize=True)


pytestmark = pytest.mark.browser


@pytest.mark.slow
def test_ui_and_offline_docs_in_chromium(tmp_path: Path) -> None:
    shots = Path(os.environ.get("VRADAM_LAB_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    db = f"sqlite:///{tmp_path / 'lab.db'}"
    store = SQLStore(db)
    store.create_schema()
    port = free_port()
    spec = quadratic_spec("ui-demo", points=3, seeds=1, epochs=3)
    ui_trialfn.reset(hold_at=6)  # the last of 6 trials waits mid-run
    ex = LocalExecutor(trial_fn="tests.service.ui_trialfn:held")
    runner = threading.Thread(target=run_study, args=(spec, store, ex), daemon=True)
    with serve(port, ["--db", db, "--no-worker", "--port", str(port)]) as (_, url):
        runner.start()
        try:
            assert ui_trialfn.REACHED.wait(120), "the held trial never started"
            (study,), _ = store.list_studies()
            # the API: the running trial first, no outcome yet, a start time
            page = httpx.get(f"{url}/v1/studies/{study.id}/trials", timeout=30).json()
            first = page["items"][0]
            assert first["state"] == "running" and first["outcome"] is None
            assert first["started_at"] and first["epoch"] == 1 and first["id"] is None
            assert page["total"] == 6 and {i["state"] for i in page["items"][1:]} == {"finished"}
            view = httpx.get(f"{url}/v1/studies/{study.id}", timeout=30).json()
            assert view["progress"]["n_running"] == 1 and view["progress"]["n_finished"] == 5
            # the CLI
            cli = CliRunner()
            out = cli.invoke(app, ["trials", study.id, "--url", url], env={"COLUMNS": "250"})
            assert out.exit_code == 0 and "running (epoch 1)" in out.stdout, out.stdout
            out = cli.invoke(app, ["status", study.id, "--url", url], env={"COLUMNS": "250"})
            assert out.exit_code == 0 and "running" in out.stdout, out.stdout

            shot = shots / "ui-studies.png"
            dom = render(f"{url}/ui", tmp_path / "list", shot)
            assert "ui-demo" in dom and f"/ui/studies/{study.id}" in dom
            assert "s-running" in dom and "5/6" in dom
            assert _not_blank(_image(shot)) > 0.01
            _shrink(shot)

            shot = shots / "ui-study.png"
            dom = render(f"{url}/ui/studies/{study.id}", tmp_path / "one", shot, size=(1280, 1900))
            assert "Running trials" in dom and "No trial is running" not in dom
            assert f'src="/v1/studies/{study.id}/report?format=html"' in dom
            img = _image(shot)
            assert _not_blank(img) > 0.01
            # the embedded report draws VRAdam and AdamW of the task on one plot
            assert all(_color_pixels(img, c) > 50 for c in CURVE_COLORS)
            _shrink(shot)
        finally:
            ui_trialfn.RELEASE.set()
            runner.join(120)
        assert store.get_study(study.id).status == StudyStatus.COMPLETED
        assert store.list_running(study.id) == []

        for path, name, expect in (
            ("/docs", "docs-swagger.png", "List studies"),
            ("/redoc", "docs-redoc.png", "List studies"),
        ):
            raw = httpx.get(f"{url}{path}", timeout=30).text
            assert "cdn." not in raw and "/static-offline-docs/" in raw  # no CDN at all
            shot = shots / name
            dom = render(f"{url}{path}", tmp_path / name, shot, budget_ms=15000)
            assert expect in dom, dom[-2000:]
            assert _not_blank(_image(shot)) > 0.01
            _shrink(shot)

        landing = httpx.get(f"{url}/", timeout=30).text
        for link in ("/docs", "/redoc", "/ui", "/healthz"):
            assert f'href="{link}"' in landing
    store.close()


@pytest.mark.slow
def test_ui_outside_local_mode_needs_a_read_token(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'lab.db'}"
    store = SQLStore(db)
    store.create_schema()
    _, secret = store.create_token("reader", ["read"])
    port = free_port()
    with serve(port, ["--db", db, "--no-worker", "--no-local", "--port", str(port)]) as (_, url):
        refused = httpx.get(f"{url}/ui", timeout=30)
        assert refused.status_code == 401 and "text/html" in refused.headers["content-type"]
        assert "serve --local" in refused.text  # says how to get in
        ok = httpx.get(f"{url}/ui", headers={"Authorization": f"Bearer {secret}"}, timeout=30)
        assert ok.status_code == 200 and "No studies yet" in ok.text
        bad = httpx.get(f"{url}/ui", headers={"Authorization": "Bearer nope"}, timeout=30)
        assert bad.status_code == 401
        missing = httpx.get(
            f"{url}/ui/studies/nosuch", headers={"Authorization": f"Bearer {secret}"}, timeout=30
        )
        assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]
        assert httpx.get(f"{url}/", timeout=30).status_code == 200  # the landing page is open
    store.close()
