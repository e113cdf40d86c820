"""PDF and PNG from the HTML report, by headless Chromium (a program on the machine, not
a Python dependency). Each call gets a throw-away profile directory, so concurrent runs
never fight over one, and a time limit, so a stuck browser cannot hang the command."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from keel.core import MissingPrerequisite

_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
_FALLBACK = Path("/usr/bin/chromium")
TIMEOUT_S = 120.0


def find_chromium(explicit: str | Path | None = None) -> Path:
    """``explicit``, else ``$KEEL_CHROMIUM``, else the first Chromium or Chrome on PATH;
    MissingPrerequisite when there is none."""
    wanted = explicit or os.environ.get("KEEL_CHROMIUM")
    if wanted:
        path = Path(wanted).expanduser()
        found = shutil.which(str(path))
        if found is None:
            raise MissingPrerequisite(f"Chromium not found at {path}: it is needed for PDF and PNG output.")
        return Path(found)
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return Path(found)
    if _FALLBACK.exists():
        return _FALLBACK
    raise MissingPrerequisite(
        "PDF and PNG output needs headless Chromium, which was not found: install it "
        "(Debian/Ubuntu: apt-get install chromium), set KEEL_CHROMIUM to its path, or leave out "
        "--pdf/--png to write the HTML report only."
    )


def _run(chromium: Path, args: list[str], html: Path, output: Path) -> None:
    output.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="keel-chromium-") as profile:
        command = [
            str(chromium),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-extensions",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            *args,
            html.resolve().as_uri(),
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise MissingPrerequisite(
                f"Chromium did not finish {output.name} in {TIMEOUT_S:.0f} s."
            ) from None
        except OSError as exc:
            raise MissingPrerequisite(f"Chromium ({chromium}) could not be started: {exc}") from None
    if done.returncode != 0 or not output.exists() or output.stat().st_size == 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise MissingPrerequisite(
            f"Chromium ({chromium}) failed to write {output} (exit {done.returncode}): {last}"
        )


def print_pdf(html: Path, pdf: Path, *, chromium: str | Path | None = None) -> Path:
    """``html`` printed to ``pdf`` (A4 from the document's ``@page`` rule, no browser
    header or footer)."""
    _run(
        find_chromium(chromium),
        [f"--print-to-pdf={pdf.resolve()}", "--no-pdf-header-footer", "--print-to-pdf-no-header"],
        html,
        pdf,
    )
    return pdf


def screenshot(html: Path, png: Path, *, width: int, height: int, chromium: str | Path | None = None) -> Path:
    """``html`` rendered at ``width`` × ``height`` CSS pixels into ``png``."""
    _run(
        find_chromium(chromium),
        [
            f"--screenshot={png.resolve()}",
            f"--window-size={width},{height}",
            "--default-background-color=ffffffff",
        ],
        html,
        png,
    )
    return png
