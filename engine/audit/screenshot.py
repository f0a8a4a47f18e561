"""Render a report in headless Chromium (the Debian ``chromium`` package) to check what a reader sees."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# Offline and quiet: no sandbox (containers run as root), no GPU, no network side channels.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def find_chromium() -> str | None:
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


def chromium_run(html: Path, *arguments: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    browser = find_chromium()
    if browser is None:
        raise FileNotFoundError(f"no headless browser found (looked for {', '.join(CHROMIUM_NAMES)} on PATH)")
    with tempfile.TemporaryDirectory(prefix="fld-chromium-") as profile:
        command = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *arguments, html.resolve().as_uri()]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True)


def screenshot(html: Path, png: Path, width: int = 1280, height: int = 2000) -> Path:
    """A PNG of the top ``width`` x ``height`` pixels of ``html`` as Chromium lays it out."""
    png.parent.mkdir(parents=True, exist_ok=True)
    chromium_run(html, f"--screenshot={png.resolve()}", f"--window-size={width},{height}")
    return png


def rendered_dom(html: Path) -> str:
    """The DOM after Chromium parsed the page (what it understood, not the bytes we wrote)."""
    return chromium_run(html, "--dump-dom").stdout
