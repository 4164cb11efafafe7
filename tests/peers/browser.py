"""A real headless Chromium for tests of the admin page (Debian's chromium and chromium-driver, which
tests/peers/install.sh installs), driven through selenium; and a PNG reader to check its screenshots.

The flags keep Chromium off the network (this machine's network is closed: without them it waits on
connections it tries for updates, sync and QUIC) and in a fresh profile of its own.
"""

from __future__ import annotations

import shutil
import struct
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)


class BrowserUnavailable(Exception):
    """Chromium cannot run here; the message says why."""


@contextmanager
def chromium() -> Iterator[Any]:
    """A selenium WebDriver on a fresh headless Chromium; BrowserUnavailable when it cannot run."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        raise BrowserUnavailable(f"{', '.join(missing)} not installed (tests/peers/install.sh installs them)")
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:
        raise BrowserUnavailable(f"selenium is not installed (the test extra): {e}") from None
    profile = tempfile.mkdtemp(prefix="mixerd-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    try:
        try:
            # The driver is given, so selenium never looks for (or downloads) one of its own.
            driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        except WebDriverException as e:
            raise BrowserUnavailable(f"chromium did not start: {e.msg or e}") from None
        try:
            driver.set_page_load_timeout(30)
            yield driver
        finally:
            driver.quit()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@dataclass(frozen=True)
class Png:
    width: int
    height: int
    channels: int
    rows: list[bytes]  # unfiltered scanlines, from the top (maybe not all of them)

    def pixels(self) -> Iterator[bytes]:
        for row in self.rows:
            for x in range(0, len(row), self.channels):
                yield row[x : x + self.channels]


_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel (8-bit, no palette)


def read_png(data: bytes, max_rows: int | None = None) -> Png:
    """An 8-bit, non-interlaced, non-palette PNG (what Chromium's screenshots are), decoded with zlib;
    only its first `max_rows` rows when given (decoding is pure Python: seconds for a whole screen)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    at, idat, header = 8, b"", None
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        at += 12 + length
    assert header is not None, "no IHDR"
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in _CHANNELS and interlace == 0, f"unsupported PNG {header}"
    channels = _CHANNELS[colour]
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytes(stride)
    for y in range(min(height, max_rows if max_rows is not None else height)):
        start = y * (stride + 1)
        row = _unfilter(raw[start], bytearray(raw[start + 1 : start + 1 + stride]), previous, channels)
        rows.append(row)
        previous = row
    return Png(width, height, channels, rows)


def _unfilter(kind: int, row: bytearray, up: bytes, bpp: int) -> bytes:
    for i in range(len(row)):
        left = row[i - bpp] if i >= bpp else 0
        corner = up[i - bpp] if i >= bpp else 0
        if kind == 1:
            row[i] = (row[i] + left) & 0xFF
        elif kind == 2:
            row[i] = (row[i] + up[i]) & 0xFF
        elif kind == 3:
            row[i] = (row[i] + (left + up[i]) // 2) & 0xFF
        elif kind == 4:
            p = left + up[i] - corner
            pa, pb, pc = abs(p - left), abs(p - up[i]), abs(p - corner)
            predictor = left if pa <= pb and pa <= pc else (up[i] if pb <= pc else corner)
            row[i] = (row[i] + predictor) & 0xFF
    return bytes(row)
