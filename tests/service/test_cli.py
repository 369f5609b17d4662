"""The CLI: tokens on the database, study commands against a live server, report, demo."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from service.cli import app
from service.client import Client
from service.embedded import EmbeddedService
from service.settings import Settings
from tests.service.conftest import free_port, quadratic_spec

ROOT = Path(__file__).resolve().parents[2]

runner = CliRunner()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('cli') / 'cli.db'}"


@pytest.fixture(scope="module")
def service(db: str) -> Iterator[EmbeddedService]:
    settings = Settings(db_url=db, port=0, local_mode=False, heartbeat_seconds=0.5,
                        poll_seconds=0.2)  # fmt: skip
    with EmbeddedService(settings) as svc:
        yield svc


@pytest.fixture(scope="module")
def env(service: EmbeddedService, db: str) -> dict[str, str]:
    result = runner.invoke(app, ["token", "create", "--name", "cli-writer", "--db", db])
    assert result.exit_code == 0, result.output
    return {"VRADAM_LAB_URL": service.url, "VRADAM_LAB_TOKEN": result.stdout.strip()}


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(quadratic_spec("cli-tiny", points=2, seeds=1, epochs=1)))
    return path


def invoke(args: list[str], env: dict[str, str] | None = None, code: int = 0):
    result = runner.invoke(app, args, env={"COLUMNS": "200", **(env or {})})
    assert result.exit_code == code, (result.output, result.exception)
    return result


def test_token_lifecycle(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'tokens.db'}"
    created = invoke(["token", "create", "--name", "alice", "--db", db])
    secret = created.stdout.strip()
    assert secret.startswith("vrl_") and len(secret.splitlines()) == 1
    assert "not shown again" in created.stderr
    invoke(["token", "create", "--name", "bob", "--scope", "read", "--db", db])
    listed = invoke(["token", "list", "--db", db]).stdout
    assert "alice" in listed and "bob" in listed and "read,write" in listed
    assert secret not in listed
    dup = invoke(["token", "create", "--name", "alice", "--db", db], code=1)
    assert "exists" in dup.output
    invoke(["token", "create", "--name", "eve", "--scope", "admin", "--db", db], code=2)
    invoke(["token", "revoke", "alice", "--db", db])
    lines = invoke(["token", "list", "--db", db]).stdout.splitlines()
    dates = {n: len(re.findall(r"\d{4}-\d\d-\d\d", next(li for li in lines if n in li)))
             for n in ("alice", "bob")}  # fmt: skip
    assert dates == {"alice": 2, "bob": 1}  # alice: created and revoked
    missing = invoke(["token", "revoke", "nobody", "--db", db], code=1)
    assert "nobody" in missing.output

    from studies.store import open_store

    store = open_store(db)
    try:
        assert store.verify_token(secret) is None  # revoked
    finally:
        store.close()


def test_submit_status_wait_trials(env: dict[str, str], spec_file: Path) -> None:
    submitted = invoke(["submit", str(spec_file)], env)
    sid = submitted.stdout.strip()
    assert len(sid) >= 8 and "submitted study" in submitted.stderr
    waited = invoke(["wait", sid, "--no-progress", "--timeout", "60"], env)
    assert "completed" in waited.stdout
    status = invoke(["status", sid], env).stdout
    assert "adamw" in status and "vradam" in status and "2/2" in status
    trials = invoke(["trials", sid], env).stdout
    assert "4 of 4" in trials and "complete" in trials
    assert "device" in trials and "cpu" in trials  # where each trial ran
    listed = invoke(["list", "--status", "completed"], env).stdout
    assert sid in listed
    conflict = invoke(["cancel", sid], env, code=1)
    assert "409" in conflict.output and "already finished" in conflict.output
    invoke(["delete", sid, "--yes"], env)
    gone = invoke(["status", sid], env, code=1)
    assert "404" in gone.output


def test_submit_errors(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(quadratic_spec(optimizers=("nope",))))
    result = invoke(["submit", str(bad)], env, code=1)
    assert "optimizers.0.name" in result.output and "unknown optimizer" in result.output
    no_token = invoke(["submit", str(bad)], {**env, "VRADAM_LAB_TOKEN": ""}, code=1)
    assert "401" in no_token.output
    assert env["VRADAM_LAB_TOKEN"] not in no_token.output
    unreachable = invoke(["list", "--url", "http://127.0.0.1:9"], env, code=1)
    assert "cannot reach" in unreachable.output


def test_submit_and_cancel_queued(env: dict[str, str], spec_file: Path, service) -> None:
    service.worker.stop()  # keep the next study queued
    assert service.worker.join(30)
    sid = invoke(["submit", str(spec_file)], env).stdout.strip()
    out = invoke(["cancel", sid], env).stdout
    assert "cancelled" in out
    invoke(["wait", sid, "--no-progress"], env, code=1)  # not completed: exit 1


def test_dashboard_command(db: str) -> None:
    out = invoke(["dashboard", "--db", db, "--port", "8123", "--print-only"]).stdout
    assert "optuna-dashboard" in out and db in out and "--port 8123" in out


@pytest.mark.slow
def test_report_and_demo(tmp_path: Path) -> None:
    spec = tmp_path / "demo.yaml"
    spec.write_text(yaml.safe_dump(quadratic_spec("demo-tiny", points=3, seeds=2, epochs=2)))
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    out = tmp_path / "reports"
    result = invoke(["demo", "--spec", str(spec), "--db", db, "--out", str(out), "--no-progress"])
    text = result.stdout
    assert "completed" in text and "Where to look next" in text
    assert "vradam-hpo dashboard --db" in text and "/docs" in text
    assert "adamw" in text and "vradam" in text
    for fmt in ("json", "md", "html", "png", "svg"):
        assert (out / f"report.{fmt}").stat().st_size > 0
    assert (out / "report.png").read_bytes().startswith(b"\x89PNG")

    from studies.store import open_store

    store = open_store(db)
    try:
        (study,), _ = store.list_studies()
        assert study.status == "completed"
        assert all(t.revoked_at is not None for t in store.list_tokens())  # demo token revoked
    finally:
        store.close()
    again = tmp_path / "again"
    invoke(["report", study.id, "--db", db, "--out", str(again)])
    assert (again / "report.md").read_text().count("vradam") >= 1
    invoke(["report", "nope", "--db", db, "--out", str(again)], code=1)

    # the same definition again: the finished study is reused, not rerun
    (out / "report.md").unlink()
    args = ["demo", "--spec", str(spec), "--db", db, "--out", str(out), "--no-progress"]
    reused = invoke(args).stdout
    assert f"reusing study {study.id}" in reused and "--fresh" in reused
    assert "adamw" in reused and "Where to look next" in reused
    assert (out / "report.md").stat().st_size > 0  # the report is written again
    store = open_store(db)
    try:
        assert store.list_studies()[1] == 1
    finally:
        store.close()
    fresh = invoke([*args, "--fresh"]).stdout
    assert "reusing" not in fresh and "completed" in fresh
    store = open_store(db)
    try:
        assert store.list_studies()[1] == 2
    finally:
        store.close()


@pytest.mark.slow
def test_serve_process_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'serve.db'}"
    secret = invoke(["token", "create", "--name", "ops", "--db", db]).stdout.strip()
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--db", db, "--port", str(port)],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            with Client(url, token=secret) as client, Client(url) as anonymous:
                deadline = time.monotonic() + 60
                while not client.healthy():
                    assert proc.poll() is None, log.read_text()
                    assert time.monotonic() < deadline, log.read_text()
                    time.sleep(0.2)
                long = quadratic_spec("long", points=2, seeds=1, epochs=5000, optimizers=("adamw",))
                sid = client.submit(long).id
                while anonymous.get(sid).status != "running":  # local mode: reads need no token
                    assert time.monotonic() < deadline, log.read_text()
                    time.sleep(0.2)
                time.sleep(1.0)
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
            assert time.monotonic() - t0 < 10
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log.read_text()
    assert f"{url}/docs" in text and "vradam-hpo dashboard --db" in text
    assert secret not in text

    from studies.store import open_store

    store = open_store(db)
    try:
        study = store.get_study(sid)
        assert study.status == "queued" and study.worker_id is None  # handed back for resume
    finally:
        store.close()


def test_missing_token_and_refused_connection_say_what_to_do(spec_file: Path, env) -> None:
    no_token = {k: v for k, v in env.items() if k != "VRADAM_LAB_TOKEN"}
    out = invoke(["submit", str(spec_file)], {**no_token, "VRADAM_LAB_TOKEN": ""}, code=1).output
    assert "VRADAM_LAB_TOKEN" in out and "vradam-hpo token create" in out
    port = free_port()  # nothing listens there
    refused = {**env, "VRADAM_LAB_URL": f"http://127.0.0.1:{port}"}
    out = invoke(["list"], refused, code=1).output
    assert out.count("cannot reach") == 1 and "vradam-hpo serve" in out
