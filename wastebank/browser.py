"""Debian's Chromium driven by Playwright for Python: the page tests and `make screenshots`.

Playwright's own browser download cannot run on our machines (no internet beyond the package
registries), so we launch the Debian package `chromium` (installed by `make test`, `make
screenshots`). As root Chromium's sandbox must be off; background networking and component updates
are off because the machines' closed network refuses those connections.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # playwright is a dev dependency: imported only when a browser is launched
    from playwright.sync_api import Browser

CHROMIUM = Path(os.environ.get("WASTEBANK_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
PHONE = {"width": 360, "height": 740}  # the citizen pages' width (a cheap Android phone)
TABLET = {"width": 800, "height": 1280}  # the attendant's tablet, portrait
DESKTOP = {"width": 1366, "height": 768}  # DLH staff


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium from /usr/bin/chromium (or $WASTEBANK_CHROMIUM)."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise FileNotFoundError(
            f"{CHROMIUM} tidak ada / not found: `make test` installs Debian's chromium "
            "(sudo apt-get install chromium)"
        )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
