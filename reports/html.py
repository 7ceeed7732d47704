"""Self-contained HTML pages with inline SVG charts: plain strings, no scripts, no external assets.

Why plain strings: a report page must open from a lake folder or an e-mail attachment with no network
and no JavaScript, and a test must be able to read what it says. Every helper returns an HTML fragment
(a `str`); `page` wraps fragments into one document with its stylesheet inline. Every text that comes
from data goes through `escape`.

The API, small on purpose:

* `page(title, *fragments)`: the whole document.
* `heading(text, level)`, `paragraph(text)`, `banner(text, kind)`: text blocks; a banner's `kind` is
  "alert" (red: refused, untrustworthy), "warn" (amber: flags) or "ok" (green).
* `table(header, rows, flagged)`: a data table; `flagged` row indexes are highlighted.
* `line_chart(series, x_labels, ...)`: one or more `Series` over categorical x labels (days), with an
  optional CI band per series (`lower`/`upper`) and an optional horizontal reference line (e.g. 0 lift).
  `None` (or NaN) values leave gaps.
* `bar_chart(bars, ...)`: horizontal bars of `Bar(label, value, lower, upper, flagged)`; optional
  interval whiskers.
* `funnel(stages, ...)`: centred bars of `(label, count)` with each stage's share of the first.

Charts have a fixed `viewBox` and scale to the page width.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
FLAG_COLOR = "#d62728"
BAND_OPACITY = 0.18
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 16, 28, 44
Y_TICKS = 5

STYLE = f"""
body {{{FONT};margin:24px auto;max-width:1100px;color:#222;padding:0 16px;}}
h1 {{font-size:1.6em;margin-bottom:0.2em;}} h2 {{font-size:1.25em;margin-top:1.6em;}}
h3 {{font-size:1.05em;}}
table {{border-collapse:collapse;margin:8px 0;font-size:0.9em;}}
th,td {{border:1px solid #ccc;padding:3px 8px;text-align:right;}}
th {{background:#f2f2f2;}} td:first-child,th:first-child {{text-align:left;}}
tr.flagged td {{background:#fde2e2;}}
.banner {{padding:10px 14px;border-radius:4px;margin:12px 0;font-weight:600;}}
.banner.alert {{background:#fde2e2;border:2px solid {FLAG_COLOR};color:#7a1010;}}
.banner.warn {{background:#fff4d6;border:1px solid #e0a800;color:#6b4f00;}}
.banner.ok {{background:#e3f5e1;border:1px solid #2ca02c;color:#1d5e1a;}}
.charts {{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,480px),1fr));gap:16px;}}
.chart {{min-width:0;}}
svg {{width:100%;height:auto;background:#fff;}}
.muted {{color:#777;font-size:0.9em;}}
"""


@dataclass(frozen=True)
class Series:
    """One line: a value per x label (None for a gap), and optionally the CI band around it."""

    name: str
    values: Sequence[float | None]
    lower: Sequence[float | None] | None = None
    upper: Sequence[float | None] | None = None
    color: str | None = None


@dataclass(frozen=True)
class Bar:
    """One horizontal bar; `lower`/`upper` draw an interval whisker, `flagged` paints it red."""

    label: str
    value: float | None
    lower: float | None = None
    upper: float | None = None
    flagged: bool = False


# ------------------------------------------------------------------------------------------ text blocks
def escape(text: object) -> str:
    """HTML-escape any value shown on a page (data can hold `<`, `&` and quotes)."""
    return html.escape(str(text), quote=True)


def page(title: str, *fragments: str) -> str:
    """A whole HTML5 document: inline stylesheet, no scripts, no links to anything outside it."""
    body = "\n".join(fragments)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def heading(text: str, level: int = 2) -> str:
    return f"<h{level}>{escape(text)}</h{level}>"


def paragraph(text: str, muted: bool = False) -> str:
    css = ' class="muted"' if muted else ""
    return f"<p{css}>{escape(text)}</p>"


def banner(text: str, kind: str = "warn") -> str:
    if kind not in ("alert", "warn", "ok"):
        raise ValueError(f"banner kind must be alert, warn or ok, got {kind!r}")
    return f'<div class="banner {kind}" role="status">{escape(text)}</div>'


def bullet_list(items: Sequence[str]) -> str:
    return "<ul>" + "".join(f"<li>{escape(item)}</li>" for item in items) + "</ul>"


def charts(*fragments: str) -> str:
    """Lay charts in equal columns (two on a wide page, one on a narrow one); a last chart alone on its row keeps
    the column width instead of stretching across the page (its text would be drawn at twice the size)."""
    return '<div class="charts">' + "".join(f'<div class="chart">{f}</div>' for f in fragments) + "</div>"


def table(header: Sequence[str], rows: Sequence[Sequence[object]], flagged: Sequence[int] = ()) -> str:
    """A table; cells are escaped, floats shown with `format_number`, rows in `flagged` highlighted."""
    marked = set(flagged)
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        css = ' class="flagged"' if i in marked else ""
        cells = "".join(f"<td>{escape(format_number(v))}</td>" for v in row)
        body.append(f"<tr{css}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def format_number(value: object) -> str:
    """Floats to 4 significant digits (large ones with thousands separators); None as an em dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value.is_integer() and abs(value) >= 1:
            return f"{int(value):,}"
        return f"{value:.4g}"
    return str(value)


# ---------------------------------------------------------------------------------------------- scales
def _finite(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and not math.isnan(float(v))]


def _y_range(values: Sequence[float], reference: float | None) -> tuple[float, float]:
    """A padded [low, high] covering every value and the reference line; never zero-width."""
    pool = list(values) + ([reference] if reference is not None else [])
    if not pool:
        return 0.0, 1.0
    low, high = min(pool), max(pool)
    if low == high:
        pad = abs(low) * 0.1 or 1.0
        return low - pad, high + pad
    pad = (high - low) * 0.08
    return low - pad, high + pad


def _svg_open(width: int, height: int, title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(title)}" style="{FONT};font-size:11px">'
            f'<title>{escape(title)}</title>'
            f'<text x="{width / 2:.1f}" y="16" text-anchor="middle" font-size="13" font-weight="600">'
            f"{escape(title)}</text>")


def _no_data(width: int, height: int, title: str) -> str:
    return (_svg_open(width, height, title) + f'<text x="{width / 2:.1f}" y="{height / 2:.1f}" '
            f'text-anchor="middle" fill="#777">no data</text></svg>')


# ------------------------------------------------------------------------------------------ line chart
def line_chart(series: Sequence[Series], x_labels: Sequence[str], title: str, *, y_label: str = "",
               reference: float | None = None, width: int = 640, height: int = 260,
               flagged_x: Sequence[int] = ()) -> str:
    """Lines over categorical x labels, each with its optional CI band; `reference` draws a dashed
    horizontal line (0 for a lift); `flagged_x` marks x positions with a red ring on every line."""
    for s in series:
        _check_length(s.name, "values", s.values, x_labels)
        for part in ("lower", "upper"):
            if getattr(s, part) is not None:
                _check_length(s.name, part, getattr(s, part), x_labels)
    pool = [v for s in series for seq in (s.values, s.lower or (), s.upper or ()) for v in _finite(seq)]
    if not x_labels or not pool:
        return _no_data(width, height, title)
    low, high = _y_range(pool, reference)
    plot_w, plot_h = width - MARGIN_LEFT - MARGIN_RIGHT, height - MARGIN_TOP - MARGIN_BOTTOM
    n = len(x_labels)

    def x_at(i: int) -> float:
        return MARGIN_LEFT + (plot_w * (i + 0.5) / n)

    def y_at(v: float) -> float:
        return MARGIN_TOP + plot_h * (1 - (v - low) / (high - low))

    parts = [_svg_open(width, height, title), _axes(low, high, y_at, plot_w, plot_h, y_label)]
    parts.append(_x_ticks(x_labels, x_at, height))
    if reference is not None:
        y = y_at(reference)
        parts.append(f'<line x1="{MARGIN_LEFT}" x2="{MARGIN_LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#555" stroke-dasharray="4 3"/>')
    for k, s in enumerate(series):
        color = s.color or PALETTE[k % len(PALETTE)]
        if s.lower is not None and s.upper is not None:
            parts.extend(_band(s, x_at, y_at, color))
        parts.extend(_polylines(s.values, x_at, y_at, color))
        parts.extend(_points(s.values, x_at, y_at, color, set(flagged_x)))
    if len(series) > 1:
        parts.append(_legend([(s.name, s.color or PALETTE[k % len(PALETTE)]) for k, s in enumerate(series)],
                             width, height))
    parts.append("</svg>")
    return "".join(parts)


def _check_length(name: str, part: str, values: Sequence[object], x_labels: Sequence[str]) -> None:
    if len(values) != len(x_labels):
        raise ValueError(f"series {name!r}: {len(values)} {part} for {len(x_labels)} x labels")


def _axes(low: float, high: float, y_at, plot_w: float, plot_h: float, y_label: str) -> str:  # noqa: ANN001
    out = [f'<rect x="{MARGIN_LEFT}" y="{MARGIN_TOP}" width="{plot_w}" height="{plot_h}" fill="none" '
           f'stroke="#bbb"/>']
    for t in range(Y_TICKS + 1):
        v = low + (high - low) * t / Y_TICKS
        y = y_at(v)
        out.append(f'<line x1="{MARGIN_LEFT}" x2="{MARGIN_LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'stroke="#eee"/>')
        out.append(f'<text x="{MARGIN_LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" fill="#444">'
                   f"{escape(format_number(round(v, 6)))}</text>")
    if y_label:
        mid = MARGIN_TOP + plot_h / 2
        out.append(f'<text x="12" y="{mid:.1f}" transform="rotate(-90 12 {mid:.1f})" text-anchor="middle" '
                   f'fill="#444">{escape(y_label)}</text>')
    return "".join(out)


def _x_ticks(x_labels: Sequence[str], x_at, height: int) -> str:  # noqa: ANN001
    """At most about eight labels, always the first and the last."""
    n = len(x_labels)
    step = max(1, math.ceil(n / 8))
    shown = [i for i in range(0, n, step) if n - 1 - i >= step or i == n - 1] + ([n - 1] if (n - 1) % step else [])
    y = height - MARGIN_BOTTOM + 16
    return "".join(f'<text x="{x_at(i):.1f}" y="{y}" text-anchor="middle" fill="#444">{escape(x_labels[i])}'
                   f"</text>" for i in shown)


def _runs(values: Sequence[float | None]) -> list[list[int]]:
    """Index runs of consecutive finite values (a None or NaN breaks the line)."""
    runs: list[list[int]] = [[]]
    for i, v in enumerate(values):
        if v is None or math.isnan(float(v)):
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append(i)
    return [r for r in runs if r]


def _polylines(values: Sequence[float | None], x_at, y_at, color: str) -> list[str]:  # noqa: ANN001
    return [f'<polyline fill="none" stroke="{color}" stroke-width="2" points="'
            + " ".join(f"{x_at(i):.1f},{y_at(float(values[i])):.1f}" for i in run) + '"/>'
            for run in _runs(values) if len(run) > 1]


def _points(values: Sequence[float | None], x_at, y_at, color: str, flagged: set[int]) -> list[str]:  # noqa: ANN001
    out = []
    for run in _runs(values):
        for i in run:
            x, y = x_at(i), y_at(float(values[i]))
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"/>')
            if i in flagged:
                out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="6" fill="none" stroke="{FLAG_COLOR}" '
                           f'stroke-width="2"/>')
    return out


def _band(s: Series, x_at, y_at, color: str) -> list[str]:  # noqa: ANN001
    """One filled polygon per run of x positions where both bounds are present."""
    both = [lo if lo is not None and hi is not None else None for lo, hi in zip(s.lower, s.upper, strict=True)]
    out = []
    for run in _runs(both):
        top = [f"{x_at(i):.1f},{y_at(float(s.upper[i])):.1f}" for i in run]
        bottom = [f"{x_at(i):.1f},{y_at(float(s.lower[i])):.1f}" for i in reversed(run)]
        if len(run) == 1:  # a lone interval: a vertical whisker
            i = run[0]
            out.append(f'<line x1="{x_at(i):.1f}" x2="{x_at(i):.1f}" y1="{y_at(float(s.lower[i])):.1f}" '
                       f'y2="{y_at(float(s.upper[i])):.1f}" stroke="{color}" stroke-width="6" '
                       f'stroke-opacity="{BAND_OPACITY * 2}"/>')
            continue
        out.append(f'<polygon points="{" ".join(top + bottom)}" fill="{color}" fill-opacity="{BAND_OPACITY}" '
                   f'stroke="none"/>')
    return out


def _legend(entries: Sequence[tuple[str, str]], width: int, height: int) -> str:
    """One row of swatches under the x labels."""
    out, x = [], MARGIN_LEFT
    y = height - 4
    for name, color in entries:
        out.append(f'<rect x="{x}" y="{y - 6}" width="10" height="4" fill="{color}"/>'
                   f'<text x="{x + 14}" y="{y}" fill="#333">{escape(name)}</text>')
        x += 24 + 7 * len(name)
        if x > width - 60:
            break
    return "".join(out)


# ------------------------------------------------------------------------------------------- bar chart
def bar_chart(bars: Sequence[Bar], title: str, *, value_label: str = "", reference: float | None = None,
              width: int = 640, bar_height: int = 22) -> str:
    """Horizontal bars, one per label, with optional interval whiskers and a dashed reference line."""
    pool = [v for b in bars for v in _finite([b.value, b.lower, b.upper])]
    label_w = min(240, 24 + 7 * max((len(b.label) for b in bars), default=4))
    height = MARGIN_TOP + 24 + bar_height * max(len(bars), 1) + 8
    if not bars or not pool:
        return _no_data(width, max(height, 80), title)
    low, high = _y_range(pool + [0.0], reference)
    low = min(low, 0.0) if min(pool) >= 0 else low
    plot_w = width - label_w - MARGIN_RIGHT - 56

    def x_at(v: float) -> float:
        return label_w + plot_w * (v - low) / (high - low)

    parts = [_svg_open(width, height, title)]
    if value_label:
        parts.append(f'<text x="{label_w + plot_w / 2:.1f}" y="{height - 4}" text-anchor="middle" fill="#444">'
                     f"{escape(value_label)}</text>")
    zero = x_at(0.0)
    for k, b in enumerate(bars):
        y = MARGIN_TOP + 4 + k * bar_height
        color = FLAG_COLOR if b.flagged else PALETTE[0]
        parts.append(f'<text x="{label_w - 6}" y="{y + bar_height * 0.65:.1f}" text-anchor="end" fill="#333">'
                     f"{escape(b.label)}</text>")
        if b.value is not None and not math.isnan(b.value):
            x0, x1 = sorted((zero, x_at(b.value)))
            parts.append(f'<rect x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 1):.1f}" '
                         f'height="{bar_height - 6}" fill="{color}" fill-opacity="0.8"/>')
            parts.append(f'<text x="{max(x1, zero) + 4:.1f}" y="{y + bar_height * 0.65:.1f}" fill="#333">'
                         f"{escape(format_number(b.value))}</text>")
        if b.lower is not None and b.upper is not None:
            mid = y + bar_height / 2
            lo, hi = x_at(b.lower), x_at(b.upper)
            parts.append(f'<line x1="{lo:.1f}" x2="{hi:.1f}" y1="{mid:.1f}" y2="{mid:.1f}" stroke="#222" '
                         f'stroke-width="1.5"/><line x1="{lo:.1f}" x2="{lo:.1f}" y1="{mid - 5:.1f}" '
                         f'y2="{mid + 5:.1f}" stroke="#222"/><line x1="{hi:.1f}" x2="{hi:.1f}" '
                         f'y1="{mid - 5:.1f}" y2="{mid + 5:.1f}" stroke="#222"/>')
    if reference is not None:
        x = x_at(reference)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{MARGIN_TOP}" y2="{height - 20}" stroke="#555" '
                     f'stroke-dasharray="4 3"/>')
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------------------------------------- funnel
def funnel(stages: Sequence[tuple[str, float]], title: str, *, width: int = 640, stage_height: int = 34) -> str:
    """Centred bars whose width is each stage's count relative to the first stage, labelled with the
    count and its share of the first stage."""
    height = MARGIN_TOP + 8 + stage_height * max(len(stages), 1) + 8
    if not stages or not stages[0][1]:
        return _no_data(width, max(height, 80), title)
    top = float(stages[0][1])
    centre, full = width / 2, width - 2 * 150
    parts = [_svg_open(width, height, title)]
    for k, (label, count) in enumerate(stages):
        share = float(count) / top
        w = max(full * share, 2.0)
        y = MARGIN_TOP + 8 + k * stage_height
        parts.append(f'<rect x="{centre - w / 2:.1f}" y="{y}" width="{w:.1f}" height="{stage_height - 6}" '
                     f'fill="{PALETTE[k % len(PALETTE)]}" fill-opacity="0.85"/>')
        parts.append(f'<text x="8" y="{y + stage_height * 0.55:.1f}" fill="#333">{escape(label)}</text>')
        parts.append(f'<text x="{width - 8}" y="{y + stage_height * 0.55:.1f}" text-anchor="end" fill="#333">'
                     f"{escape(format_number(float(count)))} ({share:.2%})</text>")
    parts.append("</svg>")
    return "".join(parts)
