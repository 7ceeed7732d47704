"""The headless-Chromium harness (tests/browser.py) on small hand-written pages: it must see every kind of
console error, stay quiet on a clean page, tell a rendered chart from a blank page, and decode PNGs right.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from tests.browser import decode_png, inject_collector, is_blank, open_page

SVG_CHART = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Chart</title>
<style>body { margin: 0; font-family: sans-serif; background: #fff; }</style></head>
<body><h1>Daily CTR</h1>
<svg width="600" height="300" viewBox="0 0 600 300" role="img" aria-label="ctr by day">
  <rect x="0" y="0" width="600" height="300" fill="#f4f4f4"/>
  <polyline points="20,250 120,180 220,200 320,90 420,120 520,40" fill="none" stroke="#1f77b4" stroke-width="4"/>
  <rect x="40" y="260" width="60" height="30" fill="#d62728"/>
</svg>
<p id="note">rendered</p>
<script>document.getElementById("note").textContent = "rendered by script";</script>
</body></html>
"""

CONSOLE_ERROR = """<!doctype html>
<html><head><title>console.error</title></head>
<body><p>visible</p><script>console.error("boom", 42);</script></body></html>
"""

# line 4 holds the syntax error; the collector must report the page's own line number
SYNTAX_ERROR = """<!doctype html>
<html><head><title>syntax</title></head>
<body><p>visible</p>
<script>var broken = ;</script>
</body></html>
"""

BLANK_WHITE = """<!doctype html>
<html><head><title>blank</title><style>body { margin: 0; background: #ffffff; }</style></head>
<body></body></html>
"""

NEEDS_NETWORK = """<!doctype html>
<html><head><title>network</title><script src="https://cdn.example.com/chart.js"></script></head>
<body><p>offline</p></body></html>
"""


def write_page(folder: Path, name: str, html: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    page = folder / name
    page.write_text(html, encoding="utf-8")
    return page


@pytest.fixture(scope="module")
def chart(tmp_path_factory):
    """SVG_CHART opened once (two Chromium runs) for the tests that only read the result: (folder, result)."""
    folder = tmp_path_factory.mktemp("chart")
    return folder, open_page(write_page(folder, "chart.html", SVG_CHART), folder / "shots")


def test_a_clean_page_with_an_svg_chart_has_no_errors_and_is_not_blank(chart):
    folder, result = chart
    assert result.console_errors == []
    assert result.screenshot == folder / "shots" / "chart.png"
    assert not is_blank(result.screenshot)
    assert result.dom_text == "Daily CTR rendered by script"


def test_the_screenshot_shows_the_chart_where_the_page_draws_it(chart):
    """The red bar is drawn at x 40..100, y 260..290 of the SVG, which starts below the heading."""
    pixels = decode_png(chart[1].screenshot)
    assert pixels.shape == (2000, 1280, 3)
    assert tuple(pixels[5, 1270]) == (255, 255, 255)  # page background, right of the chart
    red = np.all(pixels == (0xD6, 0x27, 0x28), axis=2)
    rows, cols = np.nonzero(red)
    assert (cols.min(), cols.max()) == (40, 99)
    assert rows.max() - rows.min() == 29


def test_console_error_is_caught(tmp_path):
    result = open_page(write_page(tmp_path, "error.html", CONSOLE_ERROR))
    assert result.console_errors == ["console.error: boom 42"]
    assert result.dom_text == "visible"


def test_a_javascript_syntax_error_is_caught_with_the_page_line(tmp_path):
    result = open_page(write_page(tmp_path, "syntax.html", SYNTAX_ERROR))
    assert result.console_errors == ["Uncaught SyntaxError: Unexpected token ';' (line 4)"]


def test_an_uncaught_exception_and_a_late_console_error_are_caught(tmp_path):
    html = ("<!doctype html><html><head></head><body><script>"
            "setTimeout(function () { console.error('late'); }, 300); null.field;</script></body></html>")
    result = open_page(write_page(tmp_path, "thrown.html", html))
    assert result.console_errors == [
        "Uncaught TypeError: Cannot read properties of null (reading 'field') (line 1)",
        "console.error: late",
    ]


def test_a_page_that_needs_the_network_reports_the_failed_load(tmp_path):
    result = open_page(write_page(tmp_path, "network.html", NEEDS_NETWORK))
    assert result.console_errors == ["failed to load https://cdn.example.com/chart.js"]


def test_a_blank_white_page_is_blank(tmp_path):
    result = open_page(write_page(tmp_path, "blank.html", BLANK_WHITE))
    assert result.console_errors == []
    assert is_blank(result.screenshot)
    assert tuple(decode_png(result.screenshot)[1000, 640]) == (255, 255, 255)
    assert result.dom_text == ""


def test_pages_with_the_same_name_get_their_own_screenshots(tmp_path):
    """Report pages are all named ds=D.html; two of them opened into one folder must not overwrite each other."""
    chart = write_page(tmp_path / "a", "ds=2026-01-03.html", SVG_CHART)
    blank = write_page(tmp_path / "b", "ds=2026-01-03.html", BLANK_WHITE)
    shots = tmp_path / "shots"
    first, second = open_page(chart, shots), open_page(blank, shots)
    assert (first.screenshot.name, second.screenshot.name) == ("ds=2026-01-03.png", "ds=2026-01-03-2.png")
    assert (is_blank(first.screenshot), is_blank(second.screenshot)) == (False, True)


def test_a_missing_page_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        open_page(tmp_path / "absent.html")


@pytest.mark.parametrize("html, expected", [
    ("<!doctype html><html><head><title>t</title></head></html>", "<!doctype html><html><head>{C}<title>t"),
    ("<!DOCTYPE html><html lang='en'><body>x</body></html>", "<!DOCTYPE html><html lang='en'>{C}<body>x"),
    ("<!doctype html><p>x</p>", "<!doctype html>{C}<p>x</p>"),
])
def test_the_collector_goes_first_but_never_before_the_doctype(html, expected):
    from tests.browser import COLLECTOR

    assert inject_collector(html).startswith(expected.format(C=COLLECTOR))


# ---------------------------------------------------------------- the PNG decoder on a hand-filtered image


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def _filter_row(kind: int, row: bytes, up: bytes, bpp: int) -> bytes:
    """PNG's encoder side of one filter, straight from the specification (section 9.2)."""
    out = bytearray()
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = up[i]
        c = up[i - bpp] if i >= bpp else 0
        predictor = [0, a, b, (a + b) // 2, _paeth(a, b, c)][kind]
        out.append((x - predictor) % 256)
    return bytes([kind]) + bytes(out)


def _png(pixels: list[list[tuple[int, int, int]]], filters: list[int]) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    height, width = len(pixels), len(pixels[0])
    raw, up = b"", bytes(width * 3)
    for row, kind in zip(pixels, filters, strict=True):
        flat = bytes(v for px in row for v in px)
        raw += _filter_row(kind, flat, up, 3)
        up = flat
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


PIXELS = [
    [(255, 0, 0), (0, 255, 0), (0, 0, 255), (10, 20, 30)],
    [(200, 100, 50), (201, 99, 52), (0, 0, 0), (255, 255, 255)],
    [(1, 2, 3), (250, 251, 252), (128, 128, 128), (7, 77, 177)],
    [(90, 80, 70), (60, 50, 40), (30, 20, 10), (0, 10, 20)],
    [(17, 34, 51), (255, 0, 255), (254, 1, 253), (3, 3, 3)],
]


def test_decode_png_undoes_every_filter_type():
    decoded = decode_png(_png(PIXELS, filters=[0, 1, 2, 3, 4]))
    assert decoded.tolist() == [[list(px) for px in row] for row in PIXELS]


def test_is_blank_on_hand_made_images():
    assert is_blank(_png([[(9, 9, 9)] * 4] * 3, filters=[4, 3, 1]))
    one_pixel_off = [[(9, 9, 9)] * 4, [(9, 9, 9)] * 3 + [(9, 9, 10)], [(9, 9, 9)] * 4]
    assert not is_blank(_png(one_pixel_off, filters=[0, 2, 4]))
