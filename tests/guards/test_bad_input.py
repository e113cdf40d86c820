"""Bad configuration and bad input: clear errors with locations, nothing half-built."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.core import ConfigError, InvalidRequest, load_settings
from keel.core._settings_guards import GuardSettings
from keel.guards import build_policies, build_scanner, ensure_text, guard, guards


def problems(settings: dict[str, object]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        build_policies(GuardSettings.model_validate(settings))
    return [str(p) for p in info.value.problems]


def test_every_problem_is_reported_with_its_location() -> None:
    found = problems(
        {
            "policies": {
                "a": {
                    "input": [
                        "pii",
                        "nosuch",
                        {"scanner": "regex", "patterns": ["(unclosed"]},
                        {"scanner": "injection", "threshold": "high"},
                        {"scanner": "pii", "colour": "red", "label": "pii2"},
                    ],
                    "output": ["pii", "pii"],
                }
            }
        }
    )
    assert found[0].startswith("guards.policies.a.input[1]: unknown guard 'nosuch' (known: ")
    assert found[1].startswith("guards.policies.a.input[2]: invalid regular expression '(unclosed'")
    assert found[2].startswith("guards.policies.a.input[3].threshold: ")
    assert found[3] == "guards.policies.a.input[4].colour: unknown setting for guard 'pii'"
    assert found[4].startswith("guards.policies.a.output[1]: scanner 'pii' appears twice in output")
    assert len(found) == 5


@pytest.mark.parametrize(
    ("name", "settings", "message"),
    [
        ("regex", {"patterns": ["a*"]}, "matches the empty string"),
        ("regex", {"patterns": {"1x": "a"}}, "must start with a letter"),
        ("banned_substrings", {"substrings": [""]}, "at least one non-empty substring"),
        ("pii", {"entities": ["EMAIL", "SHOE_SIZE"]}, "entities.1"),
        ("pii", {"regions": ["XX"]}, "unknown phone region 'XX'"),
        ("language", {"allow": ["tlh"]}, "unsupported language(s) tlh"),
        ("injection", {"threshold": 0.2, "flag_threshold": 0.4}, "flag_threshold <= threshold"),
        ("canary", {"token": "short"}, "at least 8 characters"),
        ("max_tokens", {"limit": 0}, "at least 1"),
        ("max_tokens", {}, "limit"),
    ],
)
def test_invalid_scanner_settings(name: str, settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_scanner(name, settings)
    assert message in str(info.value)


def test_unknown_default_policy_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "keel.yaml"
    config.write_text("guards:\n  default_policy: nope\n  policies:\n    strict:\n      input: [pii]\n")
    with pytest.raises(ConfigError, match="default_policy 'nope' is not a policy"):
        load_settings(config, environ={})


def test_unknown_policy_key_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "keel.yaml"
    config.write_text("guards:\n  policies:\n    strict:\n      action: explode\n")
    with pytest.raises(ConfigError, match=r"guards\.policies\.strict\.action"):
        load_settings(config, environ={})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe\x00binary", "is not UTF-8 text"),
        (b"PK\x03\x04\x00\x00zip", "looks binary"),
        ("text with a NUL \x00 inside", "looks binary"),
    ],
)
def test_binary_input_is_refused(data: str | bytes, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        ensure_text(data)


def test_text_passes_and_keeps_tabs_and_escapes() -> None:
    assert ensure_text(b"a\tb\r\nc\x1b[0m") == "a\tb\r\nc\x1b[0m"


def test_registering_a_name_twice_is_refused() -> None:
    assert "pii" in guards()
    with pytest.raises(ValueError, match="already registered"):
        guard("pii")(lambda: None)  # type: ignore[arg-type,return-value]
