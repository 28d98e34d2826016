"""A screenshot of a report's ``results.html``, taken in Debian's headless Chromium.

    python scripts/report_screenshot.py REPORT_DIR OUT.png

The page is loaded from disk as a reader would open it; the screenshot is of its first screen
(1400 x 1000 CSS pixels): the verdict, the fingerprint and the top of the table.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


def screenshot(report: Path, out: Path) -> None:
    """Write ``out``: the first screen of ``report``/results.html."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto((report / "results.html").resolve().as_uri())
        page.screenshot(path=str(out))
        browser.close()


if __name__ == "__main__":
    screenshot(Path(sys.argv[1]), Path(sys.argv[2]))
