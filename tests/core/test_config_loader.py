"""Loading keel.yaml: discovery, ${ENV} interpolation, KEEL_* overrides, embedded
defaults, and validation that reports every problem at its location."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from keel.core import (
    DEMO_CHAT_MODEL,
    DEMO_EMBEDDING_MODEL,
    ConfigError,
    ConfigProblem,
    KeelSettings,
    Timeouts,
    check_config,
    effective_timeouts,
    load_settings,
)

MINIMAL = """\
providers:
  openai:
    type: openai
    base_url: https://api.openai.com/v1
    api_key: sk-plain
models:
  gpt-4o:
    deployments:
      - provider: openai
        model: gpt-4o
"""


def write(tmp_path: Path, text: str, name: str = "keel.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[str]:
    return [str(p) for p in check_config(write(tmp_path, text), environ or {})]


# -- interpolation ----------------------------------------------------------------------


def test_set_variable_is_substituted_inside_a_string(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("sk-plain", "Bearer-${OPENAI_API_KEY}-x"))
    settings = load_settings(path, {"OPENAI_API_KEY": "sk-123"})
    assert settings.providers["openai"].api_key == "Bearer-sk-123-x"


def test_unset_variable_is_a_problem_at_its_key_and_line(tmp_path: Path) -> None:
    text = MINIMAL.replace("sk-plain", "${OPENAI_API_KEY}")
    assert problems_of(tmp_path, text) == [
        "providers.openai.api_key (line 5): environment variable OPENAI_API_KEY is not set"
    ]


def test_default_is_used_when_unset_or_empty_and_ignored_when_set(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("sk-plain", "${KEY:-fallback}"))
    assert load_settings(path, {}).providers["openai"].api_key == "fallback"
    assert load_settings(path, {"KEY": ""}).providers["openai"].api_key == "fallback"
    assert load_settings(path, {"KEY": "real"}).providers["openai"].api_key == "real"


def test_double_dollar_escapes_a_literal_reference(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL.replace("sk-plain", "'$${NOT_A_VAR} and ${SET}'"))
    assert load_settings(path, {"SET": "v"}).providers["openai"].api_key == "${NOT_A_VAR} and v"


def test_malformed_reference_is_a_problem(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, MINIMAL.replace("sk-plain", "'${1BAD}'"))
    assert problem.startswith("providers.openai.api_key (line 5): malformed reference")


def test_interpolated_string_is_validated_like_a_literal(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  port: ${PORT}\n")
    assert load_settings(path, {"PORT": "8123"}).server.port == 8123
    assert problems_of(tmp_path, "server:\n  port: ${PORT}\n", {"PORT": "eighty"}) == [
        "server.port (line 2): input should be a valid integer, unable to parse string as an integer"
    ]


# -- KEEL_* overrides and home ----------------------------------------------------------


def test_every_override_wins_over_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        home: from-file
        server: {host: 10.0.0.1, port: 1111, max_body_bytes: 2048}
        store: {url: "sqlite:///file.db"}
        request_log: {bodies: true}
        """,
    )
    environ = {
        "KEEL_HOME": str(tmp_path / "env-home"),
        "KEEL_DATABASE_URL": "postgresql+psycopg://u@127.0.0.1/db",
        "KEEL_HOST": "0.0.0.0",
        "KEEL_PORT": " 9000 ",
        "KEEL_LOG_BODIES": "0",
        "KEEL_MAX_BODY_BYTES": "65536",
    }
    settings = load_settings(path, environ)
    assert settings.home == tmp_path / "env-home"
    assert settings.store.url == "postgresql+psycopg://u@127.0.0.1/db"
    assert settings.database_url == "postgresql+psycopg://u@127.0.0.1/db"
    assert (settings.server.host, settings.server.port, settings.server.max_body_bytes) == (
        "0.0.0.0",
        9000,
        65536,
    )
    assert settings.request_log.bodies is False


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("TRUE", True), ("1", True), ("false", False)])
def test_log_bodies_override_parses_booleans(raw: str, expected: bool) -> None:
    assert load_settings(None, {"KEEL_LOG_BODIES": raw}).request_log.bodies is expected


def test_unparsable_overrides_are_located_at_the_variable(tmp_path: Path) -> None:
    environ = {"KEEL_PORT": "http", "KEEL_LOG_BODIES": "maybe", "KEEL_MAX_BODY_BYTES": "1MB"}
    problems = [str(p) for p in check_config(None, environ)]
    assert problems == [
        "env KEEL_PORT: must be an integer, got 'http'",
        "env KEEL_LOG_BODIES: must be true/false/1/0, got 'maybe'",
        "env KEEL_MAX_BODY_BYTES: must be an integer, got '1MB'",
    ]


def test_override_out_of_range_is_located_at_the_variable_not_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  port: 4000\n")
    assert problems_of(tmp_path, "server:\n  port: 4000\n", {"KEEL_PORT": "70000"}) == [
        "env KEEL_PORT: input should be less than or equal to 65535"
    ]
    assert load_settings(path, {"KEEL_PORT": ""}).server.port == 4000  # empty counts as unset


def test_home_defaults_to_dot_keel_and_is_relative_to_the_file(tmp_path: Path) -> None:
    assert load_settings(None, {}).home == Path("~/.keel").expanduser()
    nested = tmp_path / "conf"
    nested.mkdir()
    path = write(nested, "home: data\n")
    assert load_settings(path, {}).home == nested / "data"
    assert load_settings(write(nested, "home: /srv/keel\n"), {}).home == Path("/srv/keel")


# -- discovery and embedded defaults ----------------------------------------------------


def test_discovery_order_is_argument_then_keel_config_then_local_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings(None, {}).source is None
    write(tmp_path, "server: {port: 1}\n", "keel.yaml")
    assert load_settings(None, {}).server.port == 1
    assert load_settings(None, {}).source == "keel.yaml"
    via_env = write(tmp_path, "server: {port: 2}\n", "env.yaml")
    assert load_settings(None, {"KEEL_CONFIG": str(via_env)}).server.port == 2
    explicit = write(tmp_path, "server: {port: 3}\n", "explicit.yaml")
    assert load_settings(explicit, {"KEEL_CONFIG": str(via_env)}).server.port == 3


def test_missing_explicit_file_is_one_problem(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load_settings(missing, {})
    assert caught.value.problems == [ConfigProblem("", f"config file not found: {missing}")]
    assert caught.value.source == str(missing)


def test_no_file_gives_the_local_provider_and_both_demo_routes() -> None:
    settings = load_settings(None, {})
    assert {name: p.type for name, p in settings.providers.items()} == {"local": "local"}
    assert list(settings.models) == [DEMO_CHAT_MODEL, DEMO_EMBEDDING_MODEL]
    chat, embedding = settings.models[DEMO_CHAT_MODEL], settings.models[DEMO_EMBEDDING_MODEL]
    assert chat.mode == "chat"
    assert (chat.deployments[0].provider, chat.deployments[0].model) == ("local", DEMO_CHAT_MODEL)
    assert embedding.mode == "embedding"
    assert (embedding.deployments[0].provider, embedding.deployments[0].model) == (
        "local",
        DEMO_EMBEDDING_MODEL,
    )


def test_file_with_providers_but_no_models_gets_demo_routes(tmp_path: Path) -> None:
    path = write(tmp_path, "providers:\n  openai: {type: openai}\nmodels:\n")
    settings = load_settings(path, {})
    assert set(settings.providers) == {"openai", "local"}
    assert set(settings.models) == {DEMO_CHAT_MODEL, DEMO_EMBEDDING_MODEL}


def test_file_with_models_gets_only_its_own(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, MINIMAL), {})
    assert list(settings.providers) == ["openai"]
    assert list(settings.models) == ["gpt-4o"]


def test_models_without_providers_may_use_the_default_local_provider(tmp_path: Path) -> None:
    path = write(tmp_path, "models:\n  mine:\n    deployments: [{provider: local, model: /models/x}]\n")
    settings = load_settings(path, {})
    assert list(settings.models) == ["mine"]
    assert settings.providers["local"].type == "local"


# -- validation -------------------------------------------------------------------------


def test_every_problem_is_reported_at_once_with_lines(tmp_path: Path) -> None:
    text = """\
    server:
      port: -1
    providers:
      openai:
        type: openai
        bse_url: https://api.openai.com/v1
      odd:
        type: grpc
    models:
      gpt-4o:
        deployments:
          - provider: openai
            model: gpt-4o
            weight: 0
    """
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), {})
    assert [str(p) for p in caught.value.problems] == [
        "server.port (line 2): input should be greater than or equal to 0",
        "providers.openai.bse_url (line 6): unknown key 'bse_url' (did you mean 'base_url'?)",
        "providers.odd.type (line 8): input should be 'openai', 'anthropic' or 'local'",
        "models.gpt-4o.deployments[0].weight (line 14): input should be greater than 0",
    ]
    assert caught.value.source == str(tmp_path / "keel.yaml")


def test_unknown_key_deep_inside_gets_a_hint(tmp_path: Path) -> None:
    text = MINIMAL + "        timeouts: {conect: 1}\n"
    assert problems_of(tmp_path, text) == [
        "models.gpt-4o.deployments[0].timeouts.conect (line 11): "
        "unknown key 'conect' (did you mean 'connect'?)"
    ]
    assert problems_of(tmp_path, "servr: {}\n") == [
        "servr (line 1): unknown key 'servr' (did you mean 'server'?)"
    ]


def test_missing_required_key_points_at_its_parent(tmp_path: Path) -> None:
    assert problems_of(tmp_path, MINIMAL.replace("        model: gpt-4o\n", "")) == [
        "models.gpt-4o.deployments[0].model (line 9): missing required key 'model'"
    ]


def test_yaml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    (problem,) = check_config(write(tmp_path, "server:\n  port: 1\n  host: [a, b\nmodels: {}\n"), {})
    assert problem.location == "line 4, column 7"
    assert problem.message.startswith("invalid YAML: expected ',' or ']'")


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "- a\n- b\n") == ["line 1: the configuration must be a mapping of sections"]


def test_duplicate_yaml_key_is_a_problem_not_a_silent_overwrite(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "server: {port: 1}\nserver: {port: 2}\n") == [
        "server (line 2): duplicate key 'server' (first at line 1)"
    ]


def test_recursive_alias_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "server: &loop\n  host: [*loop]\n") == [
        "server.host[0] (line 1): recursive YAML alias"
    ]


def test_anchors_under_x_keys_and_merge_keys_work(tmp_path: Path) -> None:
    text = """\
    x-openai: &openai {type: openai, base_url: "http://127.0.0.1:9/v1"}
    providers:
      a: {<<: *openai, api_key: k}
      b: *openai
    models:
    """
    settings = load_settings(write(tmp_path, text), {})
    merged = settings.providers["a"]
    assert (merged.base_url, merged.api_key) == ("http://127.0.0.1:9/v1", "k")
    assert settings.providers["b"].type == "openai"
    assert problems_of(tmp_path, "y-base: 1\n") == [
        "y-base (line 1): unknown key 'y-base' (allowed: home, server, store, request_log, timeouts, "
        "retry, breaker, providers, models, redis_url, access, spend, cache, guards, prompts, alerts, "
        "telemetry, console, monitor, release)"
    ]


def test_dates_stay_strings(tmp_path: Path) -> None:
    path = write(tmp_path, "providers:\n  a: {type: anthropic, api_version: 2023-06-01}\n")
    assert load_settings(path, {}).providers["a"].api_version == "2023-06-01"


def test_cross_reference_problems_each_at_their_own_location(tmp_path: Path) -> None:
    text = """\
    providers:
      openai: {type: openai}
    models:
      a:
        deployments: [{provider: opena, model: x}]
        fallbacks: [b, a, ghost]
      b:
        deployments: [{provider: openai, model: y}]
        fallbacks: [c]
      c:
        deployments: [{provider: openai, model: z}]
        fallbacks: [a]
      emb:
        mode: embedding
        deployments: [{provider: openai, model: e}]
        fallbacks: [c]
    """
    assert problems_of(tmp_path, text) == [
        "models.a.deployments[0].provider (line 5): unknown provider 'opena' (known: openai)",
        "models.a.fallbacks[1] (line 6): model 'a' falls back to itself",
        "models.a.fallbacks[2] (line 6): unknown model 'ghost' (known: a, b, c, emb)",
        "models.a.fallbacks[0] (line 6): fallback cycle: a -> b -> c -> a",
        "models.emb.fallbacks[0] (line 16): fallback 'c' serves 'chat', this model serves 'embedding'",
    ]


def test_deployment_names_must_be_unique(tmp_path: Path) -> None:
    text = """\
    providers:
      openai: {type: openai}
    models:
      a:
        deployments:
          - {provider: openai, model: x}
          - {provider: openai, model: x}
          - {provider: openai, model: y, name: fast}
      b:
        deployments:
          - {provider: openai, model: z, name: fast}
          - {provider: openai, model: w, name: openai/x}
    """
    assert problems_of(tmp_path, text) == [
        "models.a.deployments[1] (line 7): deployment 'openai/x' appears twice in model 'a' "
        "(also deployments[0]); give one a distinct name",
        "models.b.deployments[0].name (line 11): deployment name 'fast' is already used at "
        "models.a.deployments[2] (line 8)",
        "models.b.deployments[1].name (line 12): deployment name 'openai/x' is the default name of "
        "models.a.deployments[0] (line 6)",
    ]


def test_same_upstream_in_two_routes_shares_its_default_name(tmp_path: Path) -> None:
    text = """\
    providers:
      openai: {type: openai}
      local: {type: local}
    models:
      a: {deployments: [{provider: openai, model: x}]}
      b: {deployments: [{provider: openai, model: x}, {provider: openai, model: x, name: x-hot}]}
      e: {mode: embedding, deployments: [{provider: local, model: keel-demo}]}
    """
    settings = load_settings(write(tmp_path, text), {})
    assert [d.effective_name for d in settings.models["b"].deployments] == ["openai/x", "x-hot"]


def test_deployment_timeouts_fall_back_key_by_key(tmp_path: Path) -> None:
    text = (
        MINIMAL.replace("sk-plain", "k")
        + "        timeouts: {read: 7}\n"
        + "timeouts: {connect: 2, read: 50}\n"
    )
    settings = load_settings(write(tmp_path, text), {})
    deployment = settings.models["gpt-4o"].deployments[0]
    assert effective_timeouts(settings, deployment) == Timeouts(connect=2, read=7)
    bare = deployment.model_copy(update={"timeouts": None})
    assert effective_timeouts(settings, bare) == settings.timeouts


def test_loaded_settings_record_their_source(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    settings = load_settings(path, {})
    assert isinstance(settings, KeelSettings)
    assert settings.source == str(path)


# -- the shipped example ----------------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parents[2] / "keel.example.yaml"


def test_example_config_is_valid_when_its_secrets_are_set() -> None:
    settings = load_settings(EXAMPLE, {"OPENAI_API_KEY": "sk-test", "ANTHROPIC_API_KEY": "ak-test"})
    assert {"openai", "anthropic", "vllm", "local"} <= set(settings.providers)
    assert settings.providers["vllm"].base_url == "http://127.0.0.1:8000/v1"
    assert any(route.fallbacks for route in settings.models.values())
    assert any(len(route.deployments) > 1 for route in settings.models.values())


def test_example_config_reports_each_unset_secret() -> None:
    messages = [p.message for p in check_config(EXAMPLE, {})]
    assert messages == [
        "environment variable OPENAI_API_KEY is not set",
        "environment variable ANTHROPIC_API_KEY is not set",
    ]
