"""``keel report cost`` on a SQLite file: HTML always, PDF and PNG through Chromium, and
a clear error when Chromium is missing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import typer
from sqlalchemy import Engine
from typer.testing import CliRunner

from keel.cli._report import register
from keel.core import MissingPrerequisite
from keel.reports import find_chromium, write_cost_report
from keel.store import create_store_engine, upgrade
from tests.reports.conftest import Seeded

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")


def keel(*args: str) -> tuple[int, str, str]:
    # The command as the lead registers it on `keel`; a local app keeps this test
    # independent of the registration order in keel.cli.
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # a second command keeps `report` a sub-command
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def sqlite_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    path = tmp_path / "home" / "keel.db"
    path.parent.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KEEL_CONFIG", raising=False)
    monkeypatch.setenv("KEEL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KEEL_DATABASE_URL", f"sqlite:///{path}")
    engine = create_store_engine(f"sqlite:///{path}")
    upgrade(engine)
    return engine


@pytest.fixture
def engine(sqlite_store: Engine) -> Engine:
    # conftest's `seeded` takes `engine`: here it is the CLI's own SQLite file.
    return sqlite_store


@needs_chromium
def test_html_pdf_and_png(seeded: Seeded, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    code, stdout, stderr = keel(
        "report", "cost", "--month", "2026-11", "--out", str(out), "--pdf", "--png", "--json"
    )
    assert code == 0, stderr
    result = json.loads(stdout)
    files = [Path(f) for f in result["files"]]
    assert files[0] == out / "keel-cost-2026-11.html" and files[1] == out / "keel-cost-2026-11.pdf"
    assert files[1].read_bytes()[:5] == b"%PDF-"
    pngs = files[2:]
    assert [p.name for p in pngs][:2] == [
        "keel-cost-2026-11-spend-by-team.png",
        "keel-cost-2026-11-alpha-spend-by-day.png",
    ]
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    alpha = next(t for t in result["teams"] if t["name"] == "alpha")
    assert (alpha["cost_usd"], alpha["budget_used"], alpha["guard_incidents"]) == ("6.5", 0.65, 2)
    assert "alpha-app" in files[0].read_text(encoding="utf-8")


def test_one_team_html_only(seeded: Seeded, tmp_path: Path) -> None:
    code, stdout, stderr = keel(
        "report", "cost", "--month", "2026-11", "--team", "beta", "--out", str(tmp_path)
    )
    assert code == 0, stderr
    html = tmp_path / "keel-cost-2026-11-beta.html"
    assert f"wrote {html}" in stdout and "$10" in stdout
    text = html.read_text(encoding="utf-8")
    assert "claude-3-5-sonnet" in text and "alpha" not in text
    assert not list(tmp_path.glob("*.pdf"))


def test_errors_are_one_line(seeded: Seeded, tmp_path: Path) -> None:
    code, _, stderr = keel("report", "cost", "--month", "2026-13", "--out", str(tmp_path))
    assert code == 1 and "YYYY-MM" in stderr
    code, _, stderr = keel("report", "cost", "--month", "2026-11", "--team", "nobody", "--out", str(tmp_path))
    assert code == 1 and "nobody" in stderr
    missing = str(tmp_path / "no-such-chromium")
    code, _, stderr = keel(
        "report", "cost", "--month", "2026-11", "--pdf", "--chromium", missing, "--out", str(tmp_path / "x")
    )
    assert code == 1 and "Chromium not found" in stderr
    # Chromium is looked for first: nothing was written.
    assert not (tmp_path / "x").exists()


def test_missing_chromium_names_the_fix(
    monkeypatch: pytest.MonkeyPatch, engine: Engine, tmp_path: Path
) -> None:
    monkeypatch.delenv("KEEL_CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("keel.reports._chromium._FALLBACK", tmp_path / "none")
    with pytest.raises(MissingPrerequisite, match="apt-get install chromium"):
        find_chromium()
    with pytest.raises(MissingPrerequisite):
        write_cost_report(engine, "2026-11", tmp_path / "out", png=True)
    assert not (tmp_path / "out").exists()
