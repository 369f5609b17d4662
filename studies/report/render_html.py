"""A self-contained HTML page of a report: inline CSS, the figure as an SVG data URI.

The page loads nothing from anywhere (no scripts, fonts, stylesheets or remote images),
so it opens from a file with no network. The figure is embedded base64-encoded, which
also keeps the XML namespace URLs of matplotlib's SVG out of the page's text.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from html import escape

from studies.report import render_md as md
from studies.report.model import Report

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
margin:0 auto;max-width:1600px;padding:16px 20px;color:#1b1f23;background:#fff;line-height:1.4}
h1{font-size:1.5rem;margin:.2rem 0 .4rem}h2{font-size:1.2rem;margin-top:1.6rem;
border-bottom:1px solid #d0d7de;padding-bottom:.2rem}h3{font-size:1rem;margin-top:1rem}
.meta{color:#57606a;font-size:.9rem}.partial{background:#fff8c5;border:1px solid #d4a72c;
padding:.5rem .8rem;border-radius:6px;margin:.6rem 0}
figure{margin:.6rem 0 1rem;text-align:center}figure img{max-width:100%;height:auto;
border:1px solid #d0d7de;border-radius:6px}figcaption{color:#57606a;font-size:.85rem}
table{border-collapse:collapse;margin:.4rem 0 1rem;font-size:.8rem;width:100%;
table-layout:auto}th,td{border:1px solid #d0d7de;padding:.2rem .35rem;text-align:right;
white-space:normal;overflow-wrap:anywhere}th{background:#f6f8fa}td:first-child,th:first-child{text-align:left}
tr:nth-child(even) td{background:#fbfcfd}ul{padding-left:1.3rem}code{background:#f6f8fa;
padding:0 .25rem;border-radius:4px}
"""


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def cell(tag: str, text: str) -> str:
        bold = text.startswith("**") and text.endswith("**") and len(text) > 4
        inner = escape(text[2:-2] if bold else text)
        return f"<{tag}>{'<strong>' + inner + '</strong>' if bold else inner}</{tag}>"

    head = "".join(cell("th", h) for h in header)
    body = "".join("<tr>" + "".join(cell("td", c) for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: Report, svg: bytes | None = None) -> str:
    """Render ``report`` as one self-contained HTML page.

    Args:
        report: The report.
        svg: The figure's SVG bytes (rendered here when None).
    """
    if svg is None:
        from studies.report.render_plot import figure_bytes

        svg = figure_bytes(report, "svg")
    title = f"Learning-rate robustness: {report.study_name or report.study_id or 'study'}"
    data = base64.b64encode(svg).decode("ascii")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">Objective <code>{escape(report.metric)}</code> ({report.direction}) · '
        f"baseline <code>{escape(report.baseline)}</code> · {report.n_trials} trials · "
        f"generated {report.generated_at:%Y-%m-%d %H:%M} UTC</p>",
    ]
    if report.partial:
        parts.append(
            '<p class="partial"><strong>Partial report:</strong> the study is unfinished or '
            "some cells are incomplete.</p>"
        )
    parts += [
        '<figure id="figure">',
        f'<img alt="Learning-rate curves per task" src="data:image/svg+xml;base64,{data}">',
        "<figcaption>Dots: each seed's score min(ℓ, ℓ0); line: the median over seeds; band: "
        "the interval over seeds (95% from 5 seeds, else the seeds' range), kept inside "
        "[0, ℓ0]; dashed: ℓ0; large markers: each optimizer's η*. Strip under each panel: "
        "the share of runs that failed to train (k/n). Bottom row: VRAdam's mean effective "
        "learning rate η_t/lr at η*."
        "</figcaption></figure>",
        "<h2>Legend</h2>",
        "<ul>" + "".join(f"<li>{escape(x)}</li>" for x in md.LEGEND) + "</ul>",
    ]
    for task in report.tasks:
        parts += [
            f"<h2>Task <code>{escape(task.task)}</code></h2>",
            f'<p class="meta">{escape(md.task_meta(task).replace("`", ""))}</p>',
        ]
        head = md.headline_rows(task, report.baseline)
        if head[1]:
            parts += ["<h3>Headline (primary)</h3>", _table(*head)]
        parts += [
            "<h3>Summary (descriptive)</h3>",
            _table(*md.summary_rows(task, report.baseline)),
            "<h3>Learning-rate curve</h3>",
            _table(*md.curve_rows(task)),
        ]
        tun = md.tunability_rows(task)
        if tun is not None:
            parts += ["<h3>Tunability (expected best score after k random-search trials)</h3>"]
            parts += [_table(*tun)]
        eff = md.effective_lr_rows(task)
        if eff is not None:
            parts += [
                "<h3>Effective learning rate (mean η_t/lr per epoch at η*)</h3>",
                _table(*eff),
            ]
    acr = md.across_rows(report)
    parts += ["<h2>Across tasks</h2>"]
    parts += [_table(*acr) if acr else f"<p>{escape(report.across_tasks.reason)}</p>"]
    items = "".join(
        f"<li><strong>{escape(m.topic)}</strong>: {escape(m.text)}</li>" for m in report.methods
    )
    parts += ["<h2>Methods</h2>", f"<ul>{items}</ul>"]
    lines = md.disclosure_lines(report)
    items = "".join(f"<li>{escape(line[2:])}</li>" for line in lines if line.startswith("- "))
    parts += ["<h2>Disclosures</h2>", f"<ul>{items}</ul>", "</body></html>"]
    return "\n".join(parts) + "\n"
