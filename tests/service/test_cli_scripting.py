"""Scripting the CLI: --json on read commands, --csv, --version, completion, report --url."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from service.cli import app, package_version
from service.client import Client
from service.embedded import EmbeddedService
from service.settings import Settings
from tests.service.conftest import quadratic_spec

runner = CliRunner()


def invoke(args: list[str], env: dict[str, str] | None = None, code: int = 0):
    result = runner.invoke(app, args, env={"COLUMNS": "200", **(env or {})})
    assert result.exit_code == code, (result.output, result.exception)
    return result


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('scripting') / 'cli.db'}"


@pytest.fixture(scope="module")
def service(db: str) -> Iterator[EmbeddedService]:
    settings = Settings(db_url=db, port=0, local_mode=False, heartbeat_seconds=0.5,
                        poll_seconds=0.2)  # fmt: skip
    with EmbeddedService(settings) as svc:
        yield svc


@pytest.fixture(scope="module")
def env(service: EmbeddedService, db: str) -> dict[str, str]:
    secret = invoke(["token", "create", "--name", "scripter", "--db", db]).stdout.strip()
    return {"VRADAM_LAB_URL": service.url, "VRADAM_LAB_TOKEN": secret}


@pytest.fixture(scope="module")
def study_id(env: dict[str, str]) -> str:
    with Client(env["VRADAM_LAB_URL"], token=env["VRADAM_LAB_TOKEN"]) as c:
        sid = c.submit(quadratic_spec("scripted", points=3, seeds=2, epochs=2)).id
        assert c.wait(sid, progress=False, timeout=120).status == "completed"
    return sid


def api(env: dict[str, str], path: str, **params: object) -> object:
    headers = {"Authorization": f"Bearer {env['VRADAM_LAB_TOKEN']}"}
    r = httpx.get(f"{env['VRADAM_LAB_URL']}/v1{path}", params=params, headers=headers)
    r.raise_for_status()
    return r.json()


def test_json_output_is_exactly_the_api_document(env: dict[str, str], study_id: str) -> None:
    status = json.loads(invoke(["status", study_id, "--json"], env).stdout)
    assert status == api(env, f"/studies/{study_id}")
    assert status["status"] == "completed"
    listed = json.loads(invoke(["list", "--json", "--limit", "5"], env).stdout)
    assert listed == api(env, "/studies", limit=5, offset=0)
    assert study_id in [s["id"] for s in listed["items"]]
    page = json.loads(invoke(["trials", study_id, "--json", "--limit", "3"], env).stdout)
    assert page == api(env, f"/studies/{study_id}/trials", limit=3, offset=0)
    assert len(page["items"]) == 3 and page["total"] == 12
    only = json.loads(invoke(["trials", study_id, "--json", "--outcome", "diverged"], env).stdout)
    assert all(t["outcome"] == "diverged" for t in only["items"])


def test_json_errors_stay_off_stdout(env: dict[str, str]) -> None:
    result = invoke(["status", "nope", "--json"], env, code=1)
    assert result.stdout == "" and "404" in result.stderr


def test_token_list_json(db: str, env: dict[str, str]) -> None:
    invoke(["token", "create", "--name", "reader", "--scope", "read", "--db", db])
    tokens = json.loads(invoke(["token", "list", "--json", "--db", db]).stdout)
    by_name = {t["name"]: t for t in tokens}
    assert by_name["reader"]["scopes"] == ["read"] and by_name["reader"]["revoked_at"] is None
    assert by_name["scripter"]["scopes"] == ["read", "write"]
    assert env["VRADAM_LAB_TOKEN"] not in json.dumps(tokens)


def test_trials_csv_has_every_trial(env: dict[str, str], study_id: str) -> None:
    text = invoke(["trials", study_id, "--csv", "--limit", "2"], env).stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 12  # all pages, not the table's --limit
    assert {r["optimizer"] for r in rows} == {"adamw", "vradam"}
    assert all(float(r["params_lr"]) > 0 for r in rows)
    assert {"metrics_val_loss", "seed", "outcome", "value"} <= set(rows[0])
    invoke(["trials", study_id, "--csv", "--json"], env, code=2)


def test_trials_dataframe(env: dict[str, str], study_id: str) -> None:
    with Client(env["VRADAM_LAB_URL"], token=env["VRADAM_LAB_TOKEN"]) as c:
        frame = c.trials_dataframe(study_id)
        trials = c.all_trials(study_id)
    assert len(frame) == 12 and sorted(frame["id"]) == sorted(t.id for t in trials)
    assert frame.groupby("optimizer").size().to_dict() == {"adamw": 6, "vradam": 6}
    assert frame["params_lr"].nunique() == 3
    assert str(frame["finished_at"].dtype).startswith("datetime64")
    best = frame.loc[frame["value"].idxmin()]
    assert best["value"] == min(t.value for t in trials if t.value is not None)


def test_trials_dataframe_without_pandas_names_the_extra(
    env: dict[str, str], study_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` now raises ImportError
    with (
        Client(env["VRADAM_LAB_URL"], token=env["VRADAM_LAB_TOKEN"]) as c,
        pytest.raises(ImportError, match=r"pip install 'vradam-lab\[pandas\]'"),
    ):
        c.trials_dataframe(study_id)


def test_report_through_the_api_matches_the_database(
    env: dict[str, str], study_id: str, db: str, tmp_path: Path
) -> None:
    via_api, via_db = tmp_path / "api", tmp_path / "db"
    shown = invoke(["report", study_id, "--url", env["VRADAM_LAB_URL"], "--out", str(via_api)],
                   {"VRADAM_LAB_TOKEN": env["VRADAM_LAB_TOKEN"]}).stdout  # fmt: skip
    assert "html" in shown
    invoke(["report", study_id, "--db", db, "--out", str(via_db)])
    for fmt in ("json", "md", "html", "png", "svg"):
        assert (via_api / f"report.{fmt}").stat().st_size > 0, fmt
    assert (via_api / "report.png").read_bytes().startswith(b"\x89PNG")
    from_api, from_db = (json.loads((d / "report.json").read_text()) for d in (via_api, via_db))
    assert from_api.pop("generated_at") and from_db.pop("generated_at")
    assert from_api == from_db and from_api["study_id"] == study_id

    def body(path: Path) -> list[str]:
        return [li for li in path.read_text().splitlines() if "generated" not in li.lower()]

    assert body(via_api / "report.md") == body(via_db / "report.md")
    missing = invoke(["report", "nope", "--url", env["VRADAM_LAB_URL"], "--out",
                      str(tmp_path / "x")], {"VRADAM_LAB_TOKEN": env["VRADAM_LAB_TOKEN"]},
                     code=1)  # fmt: skip
    assert "404" in missing.output and not (tmp_path / "x").exists()
    both = ["report", study_id, "--url", "http://x", "--db", db, "--out", str(tmp_path)]
    invoke(both, code=2)


def test_version_and_completion() -> None:
    out = invoke(["--version"]).stdout
    assert out.strip() == f"vradam-hpo {package_version()}" and package_version()[0].isdigit()
    # typer detects the shell from the process tree (newer typer takes no shell name), so
    # the installed script runs under a real bash ("; true" keeps bash from exec-ing it away)
    exe = Path(sys.executable).with_name("vradam-hpo")
    shown = subprocess.run(["bash", "-c", f"'{exe}' --show-completion; true"],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    script = shown.stdout
    assert "complete -o default -F _vradam_hpo_completion vradam-hpo" in script, shown.stderr
    helptext = invoke(["--help"]).stdout
    assert "--install-completion" in helptext and "--version" in helptext


def _all_commands() -> list[list[str]]:
    import typer.main

    root = typer.main.get_command(app)
    out: list[list[str]] = [[]]
    for name, cmd in root.commands.items():  # type: ignore[attr-defined]
        out.append([name])
        out.extend([name, sub] for sub in getattr(cmd, "commands", {}))
    return out


def test_no_bool_noise_in_any_help() -> None:
    for path in _all_commands():
        text = invoke([*path, "--help"]).stdout
        assert "<bool>" not in text, path
    wait = invoke(["wait", "--help"]).stdout
    assert "--progress" in wait and "--no-progress" in wait


def test_demo_table_speaks_the_report_s_words(db: str, study_id: str, tmp_path: Path) -> None:
    from rich.console import Console

    from service.commands.demo import result_table
    from studies.report import build_report, render
    from studies.store import open_store

    store = open_store(db)
    try:
        report = build_report(store, study_id)
    finally:
        store.close()
    console = Console(record=True, width=250)
    console.print(result_table(report))
    text = console.export_text()
    markdown = str(render(report, "md"))
    html = str(render(report, "html"))
    for words in ("η*", "ℓ* (source)", "W0.1 (grid bracket)", "divergence LR",
                  "wins/ties/losses (η, seed)"):  # fmt: skip
        assert words in text and words in markdown and words in html, words
    # two seeds: intervals are the seeds' range, labelled as the report labels them
    assert "range " in text and "[lo, hi]: 95% t" in text
    for o in report.tasks[0].optimizers:
        from studies.report import render_md as md

        cell = f"{md.est_str(o.best)} ({o.best_source})"
        assert cell in text and cell in markdown, cell
