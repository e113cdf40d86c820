"""Alert settings in keel.yaml: durations, and every problem reported at its place."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.alerts import build_rules
from keel.core import AlertSettings, ConfigError, check_config, load_settings

GOOD = """
alerts:
  interval: 1m
  channels:
    slack:
      url: https://hooks.slack.test/T0/B0/x
    oncall:
      type: email
      host: smtp.test
      from: keel@example.com
      to: [oncall@example.com]
      password: ${SMTP_PASSWORD}
  rules:
    - name: chat-latency
      kind: latency_p95
      threshold: 2000
      window: 5m
      for: 90s
      filters: {route: chat}
      channels: [slack, oncall]
    - name: budgets
      kind: budget_used
      channels: [slack]
"""

BAD = """
alerts:
  channels:
    pager:
      url: https://pager.test
    hook:
      type: webhook
      url: ftp://hook.test
  rules:
    - name: a
      kind: latency_p95
      threshold: 2000
      window: soon
    - name: b
      kind: error_rate
      filters: {rout: chat}
      min_requests: 0
      channels: [slack]
    - name: b
      kind: nonsense
      threshold: 1
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "keel.yaml"
    path.write_text(text)
    return path


def test_a_good_configuration_loads_with_durations_in_seconds(tmp_path: Path) -> None:
    settings = load_settings(
        _write(tmp_path, GOOD),
        environ={"SMTP_PASSWORD": "pw", "KEEL_HOME": str(tmp_path)},
        checks=[build_rules],
    )
    assert settings.alerts.interval == 60
    rule = settings.alerts.rules[0]
    assert (rule.window, rule.for_, rule.filters) == (300, 90, {"route": "chat"})
    assert settings.alerts.channels["oncall"].options["password"] == "pw"
    rules = build_rules(settings)
    assert [r.name for r in rules] == ["chat-latency", "budgets"] and rules[1].threshold is None


def test_every_problem_is_reported_with_its_location(tmp_path: Path) -> None:
    path = _write(tmp_path, BAD)
    problems = check_config(path, environ={"KEEL_HOME": str(tmp_path)})
    # Pydantic's own checks first: a bad duration stops the rest.
    assert [p.location for p in problems] == ["alerts.rules[0].window (line 13)"]
    assert "not a duration" in problems[0].message

    path.write_text(BAD.replace("window: soon", "window: 5m"))
    problems = {
        p.location: p.message
        for p in check_config(path, environ={"KEEL_HOME": str(tmp_path)}, checks=[build_rules])
    }
    assert set(problems) == {
        "alerts.channels.pager (line 4)",
        "alerts.channels.hook.url (line 8)",
        "alerts.rules[1].filters.rout (line 16)",
        "alerts.rules[1].min_requests (line 17)",
        "alerts.rules[1].channels[0] (line 18)",
        "alerts.rules[2].name (line 19)",
        "alerts.rules[2].kind (line 20)",
    }
    assert "unknown notifier 'pager'" in problems["alerts.channels.pager (line 4)"]
    assert "unknown channel 'slack'" in problems["alerts.rules[1].channels[0] (line 18)"]
    assert "already defined at alerts.rules[1]" in problems["alerts.rules[2].name (line 19)"]
    assert "unknown alert signal 'nonsense'" in problems["alerts.rules[2].kind (line 20)"]


def test_a_kind_without_its_own_threshold_needs_one() -> None:
    settings = AlertSettings.model_validate({"rules": [{"name": "e", "kind": "error_rate"}]})
    with pytest.raises(ConfigError) as caught:
        build_rules(settings)
    assert [str(p) for p in caught.value.problems] == [
        "alerts.rules[0].threshold: required for kind 'error_rate'"
    ]


@pytest.mark.parametrize(
    ("text", "seconds"), [("250ms", 0.25), ("30s", 30), ("5m", 300), ("1.5h", 5400), ("2d", 172800), (45, 45)]
)
def test_durations(text: object, seconds: float) -> None:
    rule = AlertSettings.model_validate(
        {"rules": [{"name": "r", "kind": "error_rate", "window": text}]}
    ).rules[0]
    assert rule.window == seconds
