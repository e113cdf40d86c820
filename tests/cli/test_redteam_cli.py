"""`keel redteam run`: a table by category, JSON, filters, --fail-on-success, keys, and
errors, against a real gateway in front of the fake upstream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cli.helpers import keel
from tests.fakes import FakeDeployment
from tests.gateway.conftest import RunningGateway, fake_settings, start_gateway

from keel.core import AccessSettings, GuardSettings, PolicySettings, ScannerSettings

POLICY = PolicySettings(
    action="block",
    input=[ScannerSettings(scanner="injection"), ScannerSettings(scanner="pii")],
    output=[ScannerSettings(scanner="canary"), ScannerSettings(scanner="pii")],
)


@pytest.fixture
def gateway(
    tmp_path: Path, upstream: FakeDeployment, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RunningGateway]:
    """``open`` (no policy) and ``guarded`` (injection + pii in, canary + pii out) in front of the echo."""
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("KEEL_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    gw = start_gateway(
        fake_settings(
            tmp_path / "home",
            {"open": [upstream], "guarded": [upstream]},
            route_options={"guarded": {"guard_policy": "strict"}},
            guards=GuardSettings(policies={"strict": POLICY}),
        )
    )
    yield gw
    gw.stop()


def test_table_by_category_and_fail_on_success(gateway: RunningGateway) -> None:
    code, out, err = keel("redteam", "run", "--target", "guarded", "--url", gateway.url, "--fail-on-success")
    assert code == 1, err
    for column in ("category", "sent", "blocked by Keel", "answered safely", "got through", "errors"):
        assert column in out
    for category in ("injection", "jailbreak", "encoding", "pii_exfiltration", "system_prompt_extraction"):
        assert category in out
    assert "got through:" in out
    # Without the flag, attacks that get through are reported, not an error.
    code, out, err = keel("redteam", "run", "-t", "guarded", "--url", gateway.url + "/v1", "-c", "injection")
    assert code == 0, err
    assert "jailbreak" not in out and "injection" in out


def test_json_report_with_categories_and_ids(gateway: RunningGateway) -> None:
    code, out, err = keel(
        "redteam", "run", "-t", "open", "--url", gateway.url, "-c", "encoding", "-c", "injection",
        "--attack", "inj-001", "--attack", "enc-001", "--attack", "jb-001", "--json",
    )  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    assert data["target"] == "open" and data["canary"].startswith("RT-CANARY-")
    assert [(r["id"], r["outcome"]) for r in data["results"]] == [("inj-001", "through"), ("enc-001", "safe")]
    assert data["categories"]["all"] == {"sent": 2, "blocked": 0, "safe": 1, "through": 1, "errors": 0}
    assert "PWNED-inj-001" in data["results"][0]["answer"]

    code, out, err = keel(
        "redteam", "run", "-t", "guarded", "--url", gateway.url, "--attack", "inj-001", "--json"
    )
    assert code == 0, err
    (result,) = json.loads(out)["results"]
    assert result["outcome"] == "blocked" and result["status"] == 400


def test_system_prompt_option_plants_its_canary(gateway: RunningGateway, upstream: FakeDeployment) -> None:
    code, out, err = keel(
        "redteam", "run", "-t", "open", "--url", gateway.url, "--attack", "spe-001",
        "--system-prompt", "You are Otto, a travel helper. Ref {canary}.", "--json",
    )  # fmt: skip
    assert code == 0, err
    canary = json.loads(out)["canary"]
    system = upstream.last_request.json["messages"][0]
    assert system["role"] == "system"
    assert system["content"].startswith(f"You are Otto, a travel helper. Ref {canary}.")


def test_the_key_comes_from_the_option_or_the_environment(
    tmp_path: Path, upstream: FakeDeployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    gw = start_gateway(
        fake_settings(tmp_path / "home", {"open": [upstream]}, access=AccessSettings(enabled=True))
    )
    try:
        secret = gw.admin().key
        args = ("redteam", "run", "-t", "open", "--url", gw.url, "--attack", "inj-001", "--json")
        code, out, err = keel(*args, "--key", secret)
        assert code == 0, err
        assert json.loads(out)["results"][0]["outcome"] == "through"
        monkeypatch.setenv("KEEL_API_KEY", secret)
        assert keel(*args)[0] == 0
        monkeypatch.setenv("KEEL_API_KEY", "sk-keel-wrong")
        code, _, err = keel(*args)
        assert code == 1 and "no attack got an answer" in err
    finally:
        gw.stop()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-c", "spam"), "unknown category 'spam'"),
        (("--attack", "nope"), "unknown attack id 'nope'"),
        (("-c", "jailbreak", "--attack", "inj-001"), "no attack matches"),
        (("--url", "http://127.0.0.1:9", "--attack", "inj-001", "--timeout", "2"), "no attack got an answer"),
    ],
)
def test_bad_options_and_an_unreachable_gateway_are_one_line_errors(
    args: tuple[str, ...], message: str
) -> None:
    code, _, err = keel("redteam", "run", "-t", "m", *args)
    assert code == 1
    assert message in err
