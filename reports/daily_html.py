"""The daily report's pages: ds=D.html (published) and ds=D.NOT_PUBLISHED.html (refused), self-contained.

Both are rendered from plain Python rows (dicts with the reports/daily columns), so the page shows exactly
what the table holds. The published page: status banners (small day, moved figures, open windows), the
day's figures, 28-day trends of every rate (moved days ringed in red), the funnel, and the breakdowns by
surface, position, variant and source. The refused page names every reason and sits beside the day's
last good page, which it never replaces.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from mutuals.lake import join_uri, open_output
from reports import html
from reports.daily import ALL, POSITION, RATES, SOURCE, SURFACE, TABLE, VARIANT

TREND_DAYS = 28
TREND_METRICS = ("impressions", "members_served", *RATES)
FUNNEL = (("impressions", "impressions", "numerator"), ("clicked", "ctr", "numerator"),
          ("valid clicks", "valid_click_rate", "numerator"), ("invited", "invite_rate", "numerator"),
          ("accepted", "accept_rate", "numerator"))
BREAKDOWN_METRICS = ("ctr", "invite_rate")
TABLE_METRICS = ("impressions", "ctr", "valid_click_rate", "invite_rate", "accept_rate", "dismiss_rate")
HEADER = ("metric", "value", "numerator", "denominator", "mature", "small", "moved")


def page_uri(lake_root: str, day: str) -> str:
    return join_uri(lake_root, "reports", "html", "daily", f"ds={day}.html")


def not_published_uri(lake_root: str, day: str) -> str:
    return join_uri(lake_root, "reports", "html", "daily", f"ds={day}.NOT_PUBLISHED.html")


def write_page(uri: str, text: str) -> None:
    """Write a page through the lake's file operations (a path or any URI the lake reaches)."""
    with open_output(uri) as out:
        out.write(text.encode("utf-8"))


# ------------------------------------------------------------------------------------------ NOT PUBLISHED
def render_not_published(day: str, reasons: Sequence[str]) -> str:
    return html.page(
        f"NOT PUBLISHED: PYMK daily report {day}",
        html.heading(f"PYMK daily report · {day}", 1),
        html.banner(f"NOT PUBLISHED: the report of {day} was refused; reports/daily was left unchanged.", "alert"),
        html.heading("Reasons"),
        html.bullet_list(reasons),
        html.paragraph(f"The last published page of this day, if there is one, is ds={day}.html beside this file. "
                       "Fix the inputs and re-run `mutuals run daily_report --date " + day + "`.", muted=True),
    )


# ------------------------------------------------------------------------------------------------ daily
def _pick(rows: Sequence[dict], metric: str, dimension: str = ALL) -> list[dict]:
    return [r for r in rows if r["metric"] == metric and r["dimension"] == dimension]


def _one(rows: Sequence[dict], metric: str) -> dict | None:
    found = _pick(rows, metric)
    return found[0] if found else None


def render_daily(day: str, today: Sequence[dict], history: Sequence[dict]) -> str:
    """The published page of `day`: `today` is every reports/daily row of the day, `history` the
    dimension-`all` rows of earlier published days (with `ds`)."""
    return html.page(
        f"PYMK daily report {day}",
        html.heading(f"PYMK daily report · {day}", 1),
        *_banners(today),
        html.heading("The day"),
        _headline_table(today),
        html.heading(f"{TREND_DAYS}-day trends"),
        html.paragraph("A red ring marks a day whose value left the band of the same weekday's trailing values.",
                       muted=True),
        html.charts(*_trend_charts(day, today, history)),
        html.heading("Funnel"),
        _funnel(today),
        html.heading("Breakdowns"),
        html.charts(*[_breakdown_chart(today, metric, dimension)
                      for metric in BREAKDOWN_METRICS for dimension in (SURFACE, POSITION)]),
        *[part for dimension in (SURFACE, POSITION, VARIANT, SOURCE) for part in _breakdown_table(today, dimension)],
        html.heading("Quarantine share per landing table"),
        _quarantine_table(today),
        html.paragraph("Rates are ratios of sums over the day's labelled impressions. 'mature: no' means a label "
                       "window the metric needs is still open (the value can still rise); 'small' marks figures "
                       "under the minimum volume.", muted=True),
    )


def _banners(today: Sequence[dict]) -> list[str]:
    out = [html.banner("Published: every audit passed.", "ok")]
    impressions = _one(today, "impressions")
    if impressions is not None and impressions["small"]:
        out.append(html.banner(f"Small day: {html.format_number(impressions['value'])} impressions, under the "
                               "minimum volume; its figures are flagged small and not judged against bands.", "warn"))
    moved = [f"{r['metric']} ({r['dimension']}={r['dimension_value']})" for r in today if r["moved"]]
    if moved:
        out.append(html.banner(f"Moved beyond the same-weekday band: {', '.join(moved)}", "warn"))
    immature = sorted({r["metric"] for r in today if r["dimension"] == ALL and not r["mature"]})
    if immature:
        out.append(html.banner(f"Label windows still open (values may rise): {', '.join(immature)}", "warn"))
    return out


def _headline_table(today: Sequence[dict]) -> str:
    rows = sorted((r for r in today if r["dimension"] == ALL), key=lambda r: r["metric"])
    cells = [[r["metric"], r["value"], r["numerator"], r["denominator"], r["mature"], r["small"], r["moved"]]
             for r in rows]
    return html.table(HEADER, cells, flagged=[i for i, r in enumerate(rows) if r["moved"]])


def _trend_charts(day: str, today: Sequence[dict], history: Sequence[dict]) -> list[str]:
    end = dt.date.fromisoformat(day)
    days = [(end - dt.timedelta(days=back)).isoformat() for back in range(TREND_DAYS - 1, -1, -1)]
    by_day = {(r["ds"], r["metric"]): r for r in history if r["dimension"] == ALL}
    by_day.update({(day, r["metric"]): r for r in today if r["dimension"] == ALL})
    charts = []
    for metric in TREND_METRICS:
        found = [by_day.get((d, metric)) for d in days]
        if not any(r is not None and r["value"] is not None for r in found):
            continue
        values = [r["value"] if r is not None else None for r in found]
        flagged = [i for i, r in enumerate(found) if r is not None and r["moved"]]
        charts.append(html.line_chart([html.Series(metric, values)], [d[5:] for d in days], metric,
                                      flagged_x=flagged))
    return charts


def _funnel(today: Sequence[dict]) -> str:
    stages = []
    for label, metric, column in FUNNEL:
        row = _one(today, metric)
        if row is not None and row[column] is not None:
            stages.append((label, row[column]))
    return html.funnel(stages, "Impressions to accepts (day's impressions)")


def _sort_key(dimension: str):  # noqa: ANN202 - a sort key
    def key(row: dict) -> tuple:
        value = row["dimension_value"]
        if dimension == POSITION and value.isdigit():
            return (0, int(value), value)
        return (1, 0, value)
    return key


def _breakdown_chart(today: Sequence[dict], metric: str, dimension: str) -> str:
    rows = sorted(_pick(today, metric, dimension), key=_sort_key(dimension))
    bars = [html.Bar(r["dimension_value"], r["value"], flagged=bool(r["moved"])) for r in rows]
    return html.bar_chart(bars, f"{metric} by {dimension}", value_label=metric)


def _breakdown_table(today: Sequence[dict], dimension: str) -> list[str]:
    values = sorted({r["dimension_value"] for r in today if r["dimension"] == dimension},
                    key=lambda v: _sort_key(dimension)({"dimension_value": v}))
    if not values:
        return []
    index = {(r["metric"], r["dimension_value"]): r for r in today if r["dimension"] == dimension}
    cells, flagged = [], []
    for i, value in enumerate(values):
        found = [index.get((m, value)) for m in TABLE_METRICS]
        cells.append([value, *[r["value"] if r is not None else None for r in found],
                       any(r is not None and r["small"] for r in found)])
        if any(r is not None and r["moved"] for r in found):
            flagged.append(i)
    return [html.heading(f"By {dimension}", 3), html.table((dimension, *TABLE_METRICS, "small"), cells, flagged)]


def _quarantine_table(today: Sequence[dict]) -> str:
    rows = sorted((r for r in today if r["metric"] == "quarantine_share"),
                  key=lambda r: (r["dimension"] != TABLE, r["dimension_value"]))
    cells = [[r["dimension_value"], r["value"], r["numerator"], r["denominator"], r["small"]] for r in rows]
    return html.table(("table", "share", "quarantined", "read", "small"), cells)
