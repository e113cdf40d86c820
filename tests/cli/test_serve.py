"""`keel serve` refuses a bad configuration, or a port it cannot bind, cleanly."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

MODELS = (
    "providers:\n  up: {type: openai, base_url: 'http://127.0.0.1:9/v1'}\n"
    "models:\n  m:\n    deployments: [{provider: %s, model: x}]\n"
)


def _serve(tmp_path: Path, config_text: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "keel.yaml"
    config.write_text(config_text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env["KEEL_HOME"] = str(tmp_path / "home")
    return subprocess.run(
        [sys.executable, "-m", "keel", "serve", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_with_an_invalid_config_exits_1_naming_each_problem(tmp_path: Path) -> None:
    result = _serve(tmp_path, "server: {port: 70000}\n" + MODELS % "nowhere")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert any("server.port" in line and "line 1" in line for line in errors), result.stderr
    assert any("nowhere" in line for line in errors), result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "home" / "keel.db").exists(), "nothing is created for a refused config"


def test_serve_on_a_busy_port_fails_saying_so(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _serve(tmp_path, f"server: {{port: {port}}}\n" + MODELS % "up")
    assert result.returncode != 0
    assert "address already in use" in result.stderr
    assert "Traceback" not in result.stderr
