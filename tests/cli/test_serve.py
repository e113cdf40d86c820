"""`keel serve` refuses a bad configuration with one line per problem, before binding."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_serve_with_an_invalid_config_exits_1_naming_each_problem(tmp_path: Path) -> None:
    config = tmp_path / "keel.yaml"
    config.write_text(
        "server: {port: 70000}\n"
        "providers:\n  up: {type: openai, base_url: 'http://127.0.0.1:9/v1'}\n"
        "models:\n  m:\n    deployments: [{provider: nowhere, model: x}]\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env["KEEL_HOME"] = str(tmp_path / "home")
    result = subprocess.run(
        [sys.executable, "-m", "keel", "serve", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert any("server.port" in line and "line 1" in line for line in errors), result.stderr
    assert any("nowhere" in line for line in errors), result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "home" / "keel.db").exists(), "nothing is created for a refused config"


def test_serve_port_in_use_is_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = tmp_path / "keel.yaml"
        config.write_text(
            f"server: {{port: {port}}}\n"
            "providers:\n  up: {type: openai, base_url: 'http://127.0.0.1:9/v1'}\n"
            "models:\n  m:\n    deployments: [{provider: up, model: x}]\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
        env["KEEL_HOME"] = str(tmp_path / "home")
        result = subprocess.run(
            [sys.executable, "-m", "keel", "serve", "--config", str(config)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
