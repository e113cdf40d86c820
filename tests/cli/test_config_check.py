"""`keel config check` and `keel config show`: output, exit status, secrets masked."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from keel.cli import app

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "keel.example.yaml"
SECRETS = {"OPENAI_API_KEY": "sk-secret-openai", "ANTHROPIC_API_KEY": "sk-secret-anthropic"}

VALID = """\
providers:
  openai:
    type: openai
    api_key: ${OPENAI_API_KEY}
    headers: {X-Org: org-secret}
models:
  gpt-4o:
    deployments: [{provider: openai, model: gpt-4o}]
"""

INVALID = """\
providers:
  openai:
    type: openai
    api_key: ${OPENAI_API_KEY}
models:
  gpt-4o:
    deployments: [{provider: opnai, model: gpt-4o, weight: -1}]
    fallbacks: [gpt-5]
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No config or secret from the machine running the tests leaks in."""
    for name in list(os.environ):
        if name.startswith("KEEL_") or name in SECRETS:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def write(tmp_path: Path, text: str, name: str = "keel.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_check_valid_file_prints_ok_with_counts(tmp_path: Path) -> None:
    path = write(tmp_path, VALID, "mine.yaml")
    code, out, err = invoke("config", "check", str(path), env=SECRETS)
    assert (code, out, err) == (0, f"OK: {path} (1 providers, 1 models)\n", "")


def test_check_reports_every_problem_on_stderr_and_exits_1(tmp_path: Path) -> None:
    path = write(tmp_path, INVALID)
    code, out, err = invoke("config", "check", str(path))
    assert code == 1
    assert out == ""
    assert err.splitlines() == [
        "error: providers.openai.api_key (line 4): environment variable OPENAI_API_KEY is not set",
        "error: models.gpt-4o.deployments[0].provider (line 7): unknown provider 'opnai' (known: openai)",
        "error: models.gpt-4o.deployments[0].weight (line 7): input should be greater than 0",
        "error: models.gpt-4o.fallbacks[0] (line 8): unknown model 'gpt-5' (known: gpt-4o)",
    ]


def test_check_missing_file_is_one_line(tmp_path: Path) -> None:
    code, out, err = invoke("config", "check", str(tmp_path / "absent.yaml"))
    assert (code, out) == (1, "")
    assert err == f"error: config file not found: {tmp_path / 'absent.yaml'}\n"


def test_check_without_a_file_validates_the_embedded_defaults() -> None:
    assert invoke("config", "check") == (0, "OK: embedded defaults (1 providers, 2 models)\n", "")


def test_check_finds_the_file_named_by_keel_config(tmp_path: Path) -> None:
    path = write(tmp_path, INVALID, "elsewhere.yaml")
    code, _, err = invoke("config", "check", env={"KEEL_CONFIG": str(path)})
    assert code == 1
    assert "unknown provider 'opnai'" in err


def test_check_reports_a_bad_override(tmp_path: Path) -> None:
    code, _, err = invoke("config", "check", env={"KEEL_PORT": "eighty"})
    assert (code, err) == (1, "error: env KEEL_PORT: must be an integer, got 'eighty'\n")


def test_show_prints_effective_yaml_with_secrets_masked(tmp_path: Path) -> None:
    path = write(tmp_path, VALID)
    env = {
        **SECRETS,
        "KEEL_DATABASE_URL": "postgresql+psycopg://keel:db-secret@127.0.0.1/keel",
        "KEEL_PORT": "4321",
    }
    code, out, _ = invoke("config", "show", str(path), env=env)
    assert code == 0
    for value in (*SECRETS.values(), "db-secret"):
        assert value not in out
    shown = yaml.safe_load(out)
    assert shown["server"]["port"] == 4321
    assert shown["providers"]["openai"]["api_key"] == "****"
    assert shown["providers"]["openai"]["headers"] == {"X-Org": "****"}
    assert shown["store"]["url"] == "postgresql+psycopg://keel:****@127.0.0.1/keel"
    assert shown["models"]["gpt-4o"]["deployments"][0]["model"] == "gpt-4o"


def test_show_fails_like_check_on_a_bad_file(tmp_path: Path) -> None:
    code, out, err = invoke("config", "show", str(write(tmp_path, INVALID)))
    assert (code, out) == (1, "")
    assert len(err.splitlines()) == 4


def keel_command(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("keel")
    base = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_") and k not in SECRETS}
    return subprocess.run(
        [str(script), *args], env={**base, **env}, cwd=REPO, capture_output=True, text=True, timeout=60
    )


def test_example_config_passes_with_its_secrets_set() -> None:
    done = keel_command("config", "check", "keel.example.yaml", env=SECRETS)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == "OK: keel.example.yaml (4 providers, 5 models)\n"


def test_example_config_names_each_unset_secret() -> None:
    done = keel_command("config", "check", "keel.example.yaml", env={})
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("error: providers.openai.api_key (line ")
    assert lines[0].endswith("environment variable OPENAI_API_KEY is not set")
    assert lines[1].startswith("error: providers.anthropic.api_key (line ")
    assert lines[1].endswith("environment variable ANTHROPIC_API_KEY is not set")


def test_show_masks_alert_channel_urls_and_the_console_secret(tmp_path: Path) -> None:
    text = VALID + textwrap.dedent(
        """\
        alerts:
          channels:
            slack: {type: slack, url: "https://hooks.slack.example/T0/B0/xyzzy"}
        console: {secret: "hunter2-signing"}
        """
    )
    code, out, err = invoke("config", "show", str(write(tmp_path, text)), env=SECRETS)
    assert code == 0, err
    assert "xyzzy" not in out and "hunter2" not in out
    shown = yaml.safe_load(out)
    assert shown["alerts"]["channels"]["slack"]["url"] == "****"
    assert shown["console"]["secret"] == "****"
