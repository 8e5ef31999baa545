"""Headless Chromium for the browser tests: Debian's package, driven by Playwright, never a download.

`scripts/test.sh` installs the `chromium` package when it is missing; a missing browser fails
the tests rather than skipping them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser")
VIEWPORT = {"width": 1280, "height": 800}


def chromium_path() -> str:
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise AssertionError(
        "Chromium is not installed: run scripts/test.sh, or apt-get install chromium"
    )


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # synchronous and safe, but Django refuses them next to a running loop without this.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            # Containers often have a small /dev/shm; as root, Chromium refuses its sandbox.
            args = ["--disable-dev-shm-usage", *(["--no-sandbox"] if os.geteuid() == 0 else [])]
            browser = playwright.chromium.launch(
                executable_path=chromium_path(), headless=True, args=args
            )
            try:
                yield browser
            finally:
                browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def screenshot_dir() -> Path | None:
    """Where to save screenshots of each role's main page: MARLIN_SCREENSHOTS, when set."""
    target = os.environ.get("MARLIN_SCREENSHOTS", "")
    if not target:
        return None
    path = Path(target)
    path.mkdir(parents=True, exist_ok=True)
    return path
