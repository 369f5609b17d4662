"""Server-rendered HTML of the ``/ui`` pages and the landing page (no CDN, no framework).

Pure functions from the API's own views (:class:`~service.schemas.StudyOut`,
:class:`~service.schemas.TrialOut`) to HTML strings; every value is escaped. A few
lines of vanilla JavaScript reload a page every few seconds while something runs.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from service.schemas import API_PREFIX, StudyOut, TrialOut

REFRESH_S = 5

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5rem 2rem;color:#1d2433}
h1{font-size:1.5rem;margin:0 0 .75rem} h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
a{color:#1f5fbf} table{border-collapse:collapse;margin:.25rem 0 1rem}
th,td{border-bottom:1px solid #d8dde6;padding:.3rem .6rem;text-align:left;font-size:.9rem}
th{background:#eef2f8} code{font-size:.85rem}
.bar{display:inline-block;width:9rem;height:.8rem;background:#e3e7ee;border-radius:.4rem;
vertical-align:middle;overflow:hidden;margin-right:.4rem}
.bar>span{display:block;height:100%;background:#2f8f5b}
.s-running{color:#1f5fbf;font-weight:600} .s-completed{color:#2f8f5b;font-weight:600}
.s-failed{color:#b3261e;font-weight:600} .s-cancelled{color:#7a6a00} .s-queued{color:#555}
.note{color:#7a5a00} .err{color:#b3261e} .muted{color:#667085;font-size:.85rem}
nav{margin-bottom:1rem} nav a{margin-right:1rem}
iframe{width:100%;height:1500px;border:1px solid #d8dde6}
"""

_REFRESH_JS = """<script>
// Reload while something runs, unless the tab is hidden (then on its return).
setTimeout(function r(){ if(document.hidden){setTimeout(r,1000);} else {location.reload();} },
%d);
</script>"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def page(title: str, body: str, *, refresh: bool = False) -> str:
    """A complete HTML document: ``title``, navigation, ``body`` (already HTML)."""
    nav = (
        '<nav><a href="/">VRAdam Lab</a><a href="/ui">studies</a>'
        '<a href="/docs">API docs</a><a href="/redoc">ReDoc</a></nav>'
    )
    script = _REFRESH_JS % (REFRESH_S * 1000) if refresh else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{nav}{body}{script}</body></html>"
    )


def landing(version: str) -> str:
    """The landing page at ``/``: what this is and where to go."""
    links = [
        ("/ui", "Studies", "the study list, each study's progress, running trials and report"),
        ("/docs", "API docs (Swagger UI)", "try the API in the browser"),
        ("/redoc", "API reference (ReDoc)", "the same API, as a reference"),
        (f"{API_PREFIX}/openapi.json", "OpenAPI schema", "for clients and code generators"),
        ("/healthz", "Liveness", "the process answers"),
        ("/readyz", "Readiness", "the database answers"),
    ]
    items = "".join(
        f'<li><a href="{_e(href)}">{_e(name)}</a> <span class="muted">{_e(what)}</span></li>'
        for href, name, what in links
    )
    body = (
        f"<h1>VRAdam Lab <span class='muted'>{_e(version)}</span></h1>"
        "<p>Hyperparameter studies that compare optimizers' robustness to the learning "
        "rate.</p>"
        f"<ul>{items}</ul>"
    )
    return page("VRAdam Lab", body)


def denied(message: str, local_hint: bool) -> str:
    """The page a reader without access gets (the API would answer 401/403)."""
    hint = (
        "<p>These pages read the API without a token only in local mode: run "
        "<code>vradam-hpo serve --local</code> (bound to 127.0.0.1) and open them there. "
        "Elsewhere, read the API with a token (<code>Authorization: Bearer ...</code>), "
        "e.g. <code>vradam-hpo list --url ... --token ...</code>.</p>"
        if local_hint
        else ""
    )
    body = f"<h1>No access</h1><p class='err'>{_e(message)}</p>{hint}"
    return page("No access", body)


def not_found(message: str) -> str:
    """The page for an unknown study."""
    return page("Not found", f"<h1>Not found</h1><p class='err'>{_e(message)}</p>")


def _bar(done: int, planned: int) -> str:
    pct = 100.0 * min(1.0, done / planned) if planned else 0.0
    return f'<span class="bar"><span style="width:{pct:.1f}%"></span></span>{done}/{planned}'


def _counts(counts: dict[str, int]) -> str:
    return " ".join(f"{_e(k)}={v}" for k, v in sorted(counts.items()))


def _status(status: object) -> str:
    return f'<span class="s-{_e(status)}">{_e(status)}</span>'


def _when(t: datetime | None) -> str:
    return "" if t is None else t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _elapsed(s: float | None) -> str:
    if s is None:
        return ""
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def study_list(studies: Sequence[StudyOut], total: int, offset: int, limit: int) -> str:
    """The ``/ui`` page: every study with status and progress."""
    rows = []
    for s in studies:
        note = s.note or s.error or ""
        cls = "note" if s.note else "err"
        rows.append(
            "<tr>"
            f'<td><a href="/ui/studies/{_e(s.id)}"><code>{_e(s.id)}</code></a></td>'
            f"<td>{_e(s.name)}</td><td>{_status(s.status)}</td>"
            f"<td>{_bar(s.progress.n_finished, s.progress.n_planned)}</td>"
            f"<td>{s.progress.n_running}</td><td>{_counts(s.counts)}</td>"
            f"<td>{_when(s.timings.created_at)}</td><td>{_elapsed(s.timings.elapsed_s)}</td>"
            f'<td class="{cls}">{_e(note)}</td></tr>'
        )
    head = "".join(
        f"<th>{c}</th>"
        for c in ("id", "name", "status", "done/planned", "running", "outcomes", "created (UTC)")
    )
    table = (
        f"<table><tr>{head}<th>elapsed</th><th>note</th></tr>{''.join(rows)}</table>"
        if rows
        else "<p>No studies yet: submit one with <code>vradam-hpo submit STUDY.yaml</code>.</p>"
    )
    more = ""
    if offset + len(studies) < total:
        more = f'<p><a href="/ui?offset={offset + limit}">older studies</a></p>'
    shown = f"{offset + 1}-{offset + len(studies)} of {total}" if studies else f"0 of {total}"
    body = f"<h1>Studies <span class='muted'>{shown}</span></h1>{table}{more}"
    running = any(s.status in ("running", "queued") for s in studies)
    return page("VRAdam Lab: studies", body, refresh=running)


def _running_table(trials: Iterable[TrialOut], metric: str) -> str:
    rows = []
    now = datetime.now(UTC)
    for t in trials:
        hp = " ".join(
            f"{_e(k)}={_e(f'{v:.4g}' if isinstance(v, float) else v)}"
            for k, v in sorted(t.hparams.items())
        )
        value = t.metrics.get(metric)
        since = (now - t.started_at).total_seconds() if t.started_at else None
        rows.append(
            f"<tr><td>{_e(t.task)}</td><td>{_e(t.optimizer)}</td><td><code>{hp}</code></td>"
            f"<td>{t.seed}</td><td>{_when(t.started_at)}</td><td>{_elapsed(since)}</td>"
            f"<td>{'' if t.epoch is None else t.epoch}</td>"
            f"<td>{'' if value is None else f'{value:.4g}'}</td></tr>"
        )
    if not rows:
        return "<p class='muted'>No trial is running.</p>"
    head = "".join(
        f"<th>{_e(c)}</th>"
        for c in ("task", "optimizer", "hyperparameters", "seed", "started (UTC)", "running for",
                  "epoch", metric)
    )  # fmt: skip
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def study_page(study: StudyOut, running: Sequence[TrialOut], metric: str) -> str:
    """The ``/ui/studies/{id}`` page: progress, cells, running trials and the report."""
    p = study.progress
    facts = [
        f"<p>{_status(study.status)} &middot; {_bar(p.n_finished, p.n_planned)} done "
        f"&middot; <b>{p.n_running}</b> running &middot; elapsed "
        f"{_elapsed(study.timings.elapsed_s) or '-'}</p>"
    ]
    if study.note:
        facts.append(f"<p class='note'>note: {_e(study.note)}</p>")
    if study.error:
        facts.append(f"<p class='err'>{_e(study.error)}</p>")
    cells = "".join(
        f"<tr><td>{c.id}</td><td>{_e(c.task)}</td><td>{_e(c.optimizer)}</td>"
        f"<td>{_bar(c.n_finished, c.n_planned)}</td><td>{c.n_running}</td>"
        f"<td>{_counts(c.counts)}</td><td><code>{_e(c.optuna_study_name)}</code></td></tr>"
        for c in p.cells
    )
    cells_table = (
        "<table><tr><th>cell</th><th>task</th><th>optimizer</th><th>done/planned</th>"
        f"<th>running</th><th>outcomes</th><th>Optuna study</th></tr>{cells}</table>"
    )
    base = f"{API_PREFIX}/studies/{_e(study.id)}"
    links = (
        f'<p class="muted">report as <a href="{base}/report?format=html">HTML</a>, '
        f'<a href="{base}/report?format=md">Markdown</a>, '
        f'<a href="{base}/report?format=json">JSON</a>; '
        f'<a href="{base}/trials">trials (JSON)</a></p>'
    )
    if p.n_finished:
        report = (
            '<p class="muted">Partial while the study runs; it reloads with the page.</p>'
            if not study.finished
            else ""
        ) + f'<iframe title="report" src="{base}/report?format=html"></iframe>'
    else:
        report = "<p class='muted'>No finished trial yet: the report comes with the first.</p>"
    body = (
        f"<h1>{_e(study.name)} <span class='muted'><code>{_e(study.id)}</code></span></h1>"
        f"{''.join(facts)}<h2>Cells</h2>{cells_table}"
        f"<h2>Running trials</h2>{_running_table(running, metric)}"
        f"<h2>Report</h2>{links}{report}"
    )
    return page(f"{study.name}: VRAdam Lab", body, refresh=not study.finished)
