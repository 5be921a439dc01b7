"""A ledger's report as one self-contained HTML page: counts, a chart, deadlines, failures.

For people who open a file, not a CSV: the flagship example writes it beside its JSON report, and
the provider's UI view links to it. It names lines, never addresses (it may be mailed around: an
address inside HubSpot's error text is redacted), and
holds no script and no external asset (it opens offline, under a strict content security policy).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import Any

from ..client.redaction import redact_text
from .outcomes import Outcome

# Outcomes a reader looks at first: what did not end as asked.
PROBLEM_OUTCOMES = (
    Outcome.FAILED.value,
    Outcome.INVALID_INPUT.value,
    Outcome.NOT_ATTEMPTED.value,
    Outcome.NEEDS_OPT_IN.value,
    Outcome.KEPT_NEWER_IN_HUBSPOT.value,
    Outcome.SUBMITTED.value,
    Outcome.PENDING.value,
)
_COLOURS = {
    Outcome.UNSUBSCRIBED.value: "#2e7d32",
    Outcome.STATUS_SET.value: "#2e7d32",
    Outcome.ALREADY_UNSUBSCRIBED.value: "#81c784",
    Outcome.ALREADY_IN_STATE.value: "#81c784",
    Outcome.FAILED.value: "#c62828",
    Outcome.INVALID_INPUT.value: "#ef6c00",
    Outcome.NOT_ATTEMPTED.value: "#9e9e9e",
    Outcome.SUBMITTED.value: "#1565c0",
}


def outcome_chart_svg(outcomes: Mapping[str, int], width: int = 560) -> str:
    """A horizontal bar chart of the outcome counts as inline SVG (largest first)."""
    items = sorted(outcomes.items(), key=lambda item: (-item[1], item[0]))
    biggest = max((n for _, n in items), default=0) or 1
    bar_room = width - 250
    lines = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{28 * len(items) + 8}" '
        'role="img" aria-label="ledger outcomes">'
    ]
    for index, (outcome, count) in enumerate(items):
        y = 4 + 28 * index
        length = max(1, round(bar_room * count / biggest)) if count else 0
        colour = _COLOURS.get(outcome, "#6d4c41")
        lines.append(
            f'<text x="0" y="{y + 16}" font-size="13">{html.escape(outcome)}</text>'
            f'<rect x="180" y="{y}" width="{length}" height="20" fill="{colour}"/>'
            f'<text x="{186 + length}" y="{y + 16}" font-size="13">{count:,}</text>'
        )
    lines.append("</svg>")
    return "".join(lines)


def _table(head: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def render_report_html(
    title: str, summary: Mapping[str, Any], problems: Iterable[Mapping[str, str]], problem_limit: int = 500
) -> str:
    """The page: ``summary`` (a batch task's summary: ``outcomes``, ``total_inputs``, and
    ``deadlines`` when a deadline was set) and the ledger rows in ``problems`` (by line, with reason,
    category and correlation id; the first ``problem_limit``)."""
    outcomes: Mapping[str, int] = summary.get("outcomes", {})
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;"
        "margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:13px}"
        "th{background:#f4f4f4}.past{color:#c62828;font-weight:bold}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{int(summary.get('total_inputs', sum(outcomes.values()))):,} input line(s); "
        f"ledger: <code>{html.escape(str(summary.get('ledger_path', '')))}</code></p>",
        "<h2>Outcomes</h2>",
        outcome_chart_svg(outcomes),
    ]
    deadlines = summary.get("deadlines")
    if deadlines:
        counts = deadlines.get("counts", {})
        parts.append(
            f"<h2>Opt-out deadline: {html.escape(str(deadlines.get('deadline')))}</h2>"
            f"<p>Assessed at {html.escape(str(deadlines.get('assessed_at')))}; near means within "
            f"{html.escape(str(deadlines.get('warning')))}.</p>"
        )
        parts.append(_table(["state", "rows"], sorted(counts.items())))
        listed = [*deadlines.get("past", []), *deadlines.get("near", []), *deadlines.get("unknown", [])]
        if listed:
            parts.append("<h3 class='past'>Rows past, near or without a readable request time</h3>")
            parts.append(
                _table(
                    ["line", "state", "outcome", "requested at", "due at", "confirmed at"],
                    (
                        [r[k] for k in ("line", "state", "outcome", "requested_at", "due_at", "confirmed_at")]
                        for r in listed
                    ),
                )
            )
    shown: list[tuple[str, ...]] = []
    more = 0
    for row in problems:
        if len(shown) < problem_limit:
            # HubSpot's error text is free text it may fill with the contact's address.
            reason = redact_text(row["reason"])
            shown.append((row["line"], row["outcome"], reason, row["category"], row["correlation_id"]))
        else:
            more += 1
    parts.append("<h2>Rows that did not end as asked</h2>")
    if shown:
        parts.append(_table(["line", "outcome", "reason", "category", "correlation id"], shown))
        if more:
            parts.append(f"<p>... and {more:,} more: see the ledger.</p>")
    else:
        parts.append("<p>None.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def problem_rows(rows: Iterable[Mapping[str, str]]) -> Iterable[Mapping[str, str]]:
    """The ledger rows a reader must look at (``PROBLEM_OUTCOMES``), streamed in line order."""
    return (row for row in rows if row["outcome"] in PROBLEM_OUTCOMES)
