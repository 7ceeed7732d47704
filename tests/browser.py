"""Open an HTML page in a real headless Chromium (Debian's `chromium`, installed by `make chromium`): what the
console reported as errors, a screenshot, and the page's text after its scripts ran.

Why two Chromium runs per page: headless Chromium logs every console message at the same level on stderr
(`INFO:CONSOLE`), so a `console.error` cannot be told from a `console.log` there. The first run therefore
loads a copy of the page with a tiny collector injected as its first script: it records `console.error`
calls, uncaught exceptions (syntax errors in later scripts included), unhandled promise rejections and
resources that failed to load, into an attribute of <html>, which `--dump-dom` prints. The second run takes
the screenshot of the page itself, untouched. The copy sits in a temporary folder, so a page that needs any
file beside it fails to load what it needs, as it would when mailed.

No network: every host name resolves to nothing (`--host-resolver-rules`), so a page that fetches a script,
a font or an image from the web shows a load error instead of silently depending on it.

`is_blank` decodes the PNG by hand (zlib, struct and numpy, all already here): a page whose plots did not
render to anything is a single colour.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import tempfile
import zlib
from dataclasses import dataclass
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import numpy as np

CHROMIUM = "chromium"
WINDOW = (1280, 2000)
TIMEOUT_S = 120
# Chromium's headless flags for a reproducible, offline, single-shot page load.
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    f"--window-size={WINDOW[0]},{WINDOW[1]}",
    "--hide-scrollbars",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    # lets timers the page sets while loading run before the DOM is printed or the screenshot is taken
    "--virtual-time-budget=2000",
]

ERRORS_ATTRIBUTE = "data-browser-test-errors"
COLLECTOR_ID = "browser-test-error-collector"
# Kept on one line once injected, so the line numbers errors report are those of the page itself.
_COLLECTOR_LINES = f"""(function () {{
  var root = document.documentElement, errors = [];
  function record(text) {{
    errors.push(String(text));
    root.setAttribute("{ERRORS_ATTRIBUTE}", JSON.stringify(errors));
  }}
  root.setAttribute("{ERRORS_ATTRIBUTE}", "[]");
  var consoleError = console.error;
  console.error = function () {{
    record("console.error: " + Array.prototype.map.call(arguments, String).join(" "));
    return consoleError.apply(console, arguments);
  }};
  window.addEventListener("error", function (event) {{
    var target = event.target;
    if (target && target !== window && (target.src || target.href)) {{
      record("failed to load " + (target.src || target.href));
    }} else {{
      record((event.message || String(event.error)) + " (line " + event.lineno + ")");
    }}
  }}, true);
  window.addEventListener("unhandledrejection", function (event) {{
    record("unhandled rejection: " + event.reason);
  }});
}})();"""
COLLECTOR = f'<script id="{COLLECTOR_ID}">{" ".join(line.strip() for line in _COLLECTOR_LINES.splitlines())}</script>'


class BrowserFailed(RuntimeError):
    """Chromium itself did not run to the end (not installed, crashed, timed out)."""


@dataclass(frozen=True)
class PageResult:
    console_errors: list[str]
    screenshot: Path
    dom_text: str


def open_page(html_path: Path | str, out_dir: Path | str | None = None) -> PageResult:
    """Load `html_path` in headless Chromium; the screenshot is written to `out_dir` (a new temp folder if None)."""
    page = Path(html_path).resolve()
    if not page.is_file():
        raise FileNotFoundError(page)
    out = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="browser-"))
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="browser-run-") as work:
        probe = Path(work) / page.name
        probe.write_text(inject_collector(page.read_text(encoding="utf-8")), encoding="utf-8")
        dom = _chromium(["--dump-dom", probe.as_uri()], Path(work) / "profile-dom").stdout
        screenshot = _free_name(out, page.stem)
        _chromium([f"--screenshot={screenshot}", page.as_uri()], Path(work) / "profile-shot")
    if not screenshot.is_file():
        raise BrowserFailed(f"chromium wrote no screenshot of {page}")
    return PageResult(console_errors=collected_errors(dom), screenshot=screenshot, dom_text=visible_text(dom))


def _free_name(folder: Path, stem: str) -> Path:
    """`<stem>.png` in `folder`, or `<stem>-2.png`, ...: pages of different reports share names like `ds=D`."""
    candidate, n = folder / f"{stem}.png", 1
    while candidate.exists():
        n += 1
        candidate = folder / f"{stem}-{n}.png"
    return candidate


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    """One headless Chromium run with its own throw-away profile (parallel runs never share a lock)."""
    if shutil.which(CHROMIUM) is None:
        raise BrowserFailed(f"{CHROMIUM} is not installed; run `make chromium`")
    command = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise BrowserFailed(f"chromium timed out after {TIMEOUT_S}s: {' '.join(command)}") from exc
    if done.returncode != 0:
        raise BrowserFailed(f"chromium exited {done.returncode}: {done.stderr[-2000:]}")
    return done


def inject_collector(html: str) -> str:
    """The page with the collector as its first script: after <head>, else after <html>, else after the doctype
    (never before it, which would switch the page into quirks mode)."""
    for pattern in (r"<head(\s[^>]*)?>", r"<html(\s[^>]*)?>", r"<!doctype[^>]*>"):
        match = re.search(pattern, html, flags=re.IGNORECASE)
        if match:
            return html[: match.end()] + COLLECTOR + html[match.end():]
    return COLLECTOR + html


def collected_errors(dom: str) -> list[str]:
    """The errors the collector wrote on <html>; a missing attribute means the collector never ran."""
    match = re.search(rf'<html[^>]*\s{ERRORS_ATTRIBUTE}="([^"]*)"', dom, flags=re.IGNORECASE)
    if match is None:
        raise BrowserFailed(f"the error collector did not run; dumped DOM starts {dom[:300]!r}")
    return json.loads(unescape(match.group(1)))


class _TextParser(HTMLParser):
    """Collects the text of the page body outside scripts and styles: roughly what a reader sees."""

    HIDDEN = {"title", "script", "style", "template", "noscript"}

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in self.HIDDEN:
            self.depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN and self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if not self.depth and data.strip():
            self.parts.append(data.strip())


def visible_text(dom: str) -> str:
    parser = _TextParser()
    parser.feed(dom)
    return " ".join(parser.parts)


# ---------------------------------------------------------------- PNG


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# colour type -> channels, for 8-bit images (what Chromium writes: RGB or RGBA)
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


def decode_png(png: Path | str | bytes) -> np.ndarray:
    """An 8-bit, non-interlaced PNG as a (height, width, channels) uint8 array."""
    data = png if isinstance(png, bytes) else Path(png).read_bytes()
    if data[:8] != _PNG_SIGNATURE:
        raise ValueError("not a PNG file")
    header, idat, pos = None, bytearray(), 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos: pos + 4])
        kind, body = data[pos + 4: pos + 8], data[pos + 8: pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    if header is None:
        raise ValueError("PNG without an IHDR chunk")
    width, height, depth, colour, _, _, interlace = header
    if depth != 8 or colour not in _CHANNELS or interlace:
        raise ValueError(f"unsupported PNG: bit depth {depth}, colour type {colour}, interlace {interlace}")
    channels = _CHANNELS[colour]
    raw = np.frombuffer(zlib.decompress(bytes(idat)), dtype=np.uint8).reshape(height, 1 + width * channels)
    return _unfilter(raw[:, 0], raw[:, 1:], channels).reshape(height, width, channels)


def _unfilter(filters: np.ndarray, rows: np.ndarray, bpp: int) -> np.ndarray:
    """Undo PNG's per-row filters: None, Sub and Up vectorised, Average and Paeth byte by byte."""
    out = np.zeros_like(rows)
    previous = np.zeros(rows.shape[1], dtype=np.uint8)
    for y, kind in enumerate(filters):
        row = rows[y]
        if kind == 0:
            current = row.copy()
        elif kind == 1:
            current = (np.cumsum(row.reshape(-1, bpp), axis=0, dtype=np.uint64) % 256).astype(np.uint8).ravel()
        elif kind == 2:
            current = row + previous  # uint8 arithmetic wraps modulo 256
        elif kind in (3, 4):
            current = np.frombuffer(_unfilter_sequential(int(kind), row.tobytes(), previous.tobytes(), bpp),
                                    dtype=np.uint8)
        else:
            raise ValueError(f"unknown PNG filter type {kind} on row {y}")
        out[y] = current
        previous = out[y]
    return out


def _unfilter_sequential(kind: int, row: bytes, up: bytes, bpp: int) -> bytearray:
    current = bytearray(len(row))
    for i, value in enumerate(row):
        left = current[i - bpp] if i >= bpp else 0
        above = up[i]
        if kind == 3:
            current[i] = (value + ((left + above) >> 1)) & 0xFF
            continue
        upper_left = up[i - bpp] if i >= bpp else 0
        estimate = left + above - upper_left
        pa, pb, pc = abs(estimate - left), abs(estimate - above), abs(estimate - upper_left)
        predictor = left if pa <= pb and pa <= pc else above if pb <= pc else upper_left
        current[i] = (value + predictor) & 0xFF
    return current


def distinct_colours(png: Path | str | bytes) -> int:
    pixels = decode_png(png)
    return len(np.unique(pixels.reshape(-1, pixels.shape[2]), axis=0))


def is_blank(png: Path | str | bytes) -> bool:
    """True when every pixel of the image has the same colour (nothing rendered)."""
    pixels = decode_png(png)
    flat = pixels.reshape(-1, pixels.shape[2])
    return bool((flat == flat[0]).all())
