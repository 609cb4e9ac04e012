"""The coverage page's HTML: one row of cells per stream, one cell per interval, gaps listed beside it.

Colours are chosen so that what needs action stands out on a page of green: red is a due interval with no
manifest, purple a failed run, blue a run in progress, grey not yet due, pale green complete but empty.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import groupby

from auditlogs.coverage.app import escape, folder_link, run_link
from auditlogs.coverage.model import COMPLETE, EMPTY, FAILED, MISSING, NOT_DUE, RUNNING, Coverage, StreamCoverage

LABELS = {
    COMPLETE: "complete",
    EMPTY: "empty but complete",
    MISSING: "missing (due, no manifest)",
    FAILED: "failed run",
    RUNNING: "running",
    NOT_DUE: "not yet due",
}
COLOURS = {
    COMPLETE: "#2e7d32",
    EMPTY: "#a5d6a7",
    MISSING: "#e53935",
    FAILED: "#7b1fa2",
    RUNNING: "#1e88e5",
    NOT_DUE: "#e0e0e0",
}
#: Gaps listed per stream; the rest is summarised.
GAPS_LISTED = 12

_STYLE = """
body{font:13px system-ui,sans-serif;margin:16px;color:#1a1a1a;background:#fff}
h1{font-size:18px;margin:0 0 4px} .sub{color:#555;margin-bottom:12px}
.legend span{display:inline-flex;align-items:center;margin-right:14px}
.legend i{width:12px;height:12px;display:inline-block;margin-right:4px;border-radius:2px}
.source{margin-top:18px} .source h2{font-size:15px;margin:0 0 4px}
.stream{display:grid;grid-template-columns:170px 1fr 330px;gap:10px;align-items:start;margin:4px 0}
.name{font-weight:600;overflow:hidden;text-overflow:ellipsis}
.name .bad{color:#c62828;font-weight:700}
.cells{display:flex;gap:1px;height:22px} .cells a{flex:1 1 0;min-width:2px;border-radius:1px}
.days{display:flex;color:#777;font-size:11px} .days span{flex:1 1 0;border-left:1px solid #ccc;padding-left:2px}
.side{font-size:12px;color:#333} .side .gap a{color:#c62828} .side .advice{color:#8d6e00}
form{margin:8px 0} input{font:inherit}
"""


def render(coverage: Coverage) -> str:
    missing = sum(len(s.missing) for s in coverage.streams)
    headline = (
        f'<span style="color:#c62828;font-weight:700">{missing} due interval(s) without a manifest</span>'
        if missing
        else '<span style="color:#2e7d32;font-weight:700">every due interval is complete</span>'
    )
    legend = "".join(f'<span><i style="background:{COLOURS[s]}"></i>{LABELS[s]}</span>' for s in LABELS)
    sources = []
    grouped = [(source, list(streams)) for source, streams in groupby(coverage.streams, key=lambda s: s.source)]
    grouped.sort(key=lambda group: not any(stream.missing for stream in group[1]))  # sources with gaps first
    for source, streams in grouped:
        rows = "".join(_stream(stream) for stream in streams)
        sources.append(
            f'<section class="source" data-source="{escape(source)}"><h2>{escape(source)}</h2>{rows}</section>'
        )
    body = "".join(sources) or "<p>No source you may read is configured.</p>"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Audit-log coverage</title>
<style>{_STYLE}</style></head><body>
<h1>Audit-log coverage</h1>
<div class="sub">Intervals starting in [{escape(coverage.first)}, {escape(coverage.last)}) (UTC), as of
{escape(coverage.now[:19])}Z: <span id="headline">{headline}</span></div>
<form method="get"><label>From <input type="date" name="from" value="{escape(coverage.first[:10])}"></label>
<label>to <input type="date" name="to" value="{escape(_last_day(coverage))}"></label> <button>Show</button></form>
<div class="legend">{legend}</div>
{body}
</body></html>"""


def _last_day(coverage: Coverage) -> str:
    return (datetime.fromisoformat(coverage.last) - timedelta(days=1)).date().isoformat()


def _stream(stream: StreamCoverage) -> str:
    cells = "".join(_cell(stream, cell) for cell in stream.cells)
    days = "".join(
        f'<span style="flex-grow:{len(list(group))}">{escape(day)}</span>'
        for day, group in groupby(stream.cells, key=lambda c: c.start[5:10])
    )
    bad = len(stream.missing)
    name = escape(stream.stream) + (f' <span class="bad">{bad} gap(s)</span>' if bad else "")
    return (
        f'<div class="stream" data-stream="{escape(stream.stream)}"><div class="name">{name}</div>'
        f'<div><div class="days">{days}</div><div class="cells">{cells}</div></div>'
        f'<div class="side">{_side(stream)}</div></div>'
    )


def _cell(stream: StreamCoverage, cell) -> str:
    title = f"{cell.start[:16]} to {cell.end[11:16]} UTC: {LABELS[cell.state]}"
    if cell.events is not None:
        title += f", {cell.events} events"
    href = run_link(stream.dag_id, cell.run_id) if cell.run_id else folder_link(stream.bucket, cell.folder)
    return (
        f'<a class="cell {cell.state}" data-state="{cell.state}" data-start="{escape(cell.start)}" '
        f'data-events="{"" if cell.events is None else cell.events}" title="{escape(title)}" '
        f'href="{escape(href)}" target="_top" style="background:{COLOURS[cell.state]}"></a>'
    )


def _side(stream: StreamCoverage) -> str:
    counts = stream.counts
    lines = [
        f"{counts[COMPLETE] + counts[EMPTY]} complete ({counts[EMPTY]} empty)"
        + (f", {counts[NOT_DUE]} not yet due" if counts[NOT_DUE] else "")
    ]
    if stream.late_arrivals is not None:
        lines.append(f"late arrivals (recent runs): {stream.late_arrivals}")
    if stream.silence_streak:
        lines.append(f"silent for the last {stream.silence_streak} interval(s)")
    if stream.advice:
        lines.append(f'<span class="advice">{escape(stream.advice)}</span>')
    for cell in stream.missing[:GAPS_LISTED]:
        run = ""
        if cell.run_id:
            run = f' · <a href="{escape(run_link(stream.dag_id, cell.run_id))}" target="_top">run</a>'
        folder = escape(folder_link(stream.bucket, cell.folder))
        lines.append(
            f'<span class="gap">{LABELS[cell.state]}: <a href="{folder}" target="_blank" rel="noopener">'
            f"{escape(cell.start[:16])}</a>{run}</span>"
        )
    if len(stream.missing) > GAPS_LISTED:
        lines.append(f"... and {len(stream.missing) - GAPS_LISTED} more")
    return "<br>".join(lines)
