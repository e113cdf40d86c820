"""The registry in the store (SQLite and, when configured, PostgreSQL)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from keel.core import InvalidRequest, NotFound, PermissionDenied
from keel.prompts import PromptRegistry, PromptVersion, prompt_label_history, prompt_versions, prompts
from keel.store import create_store_engine, read_audit, read_changes

CHAT = [
    {"role": "system", "content": "You support {{ product }}."},
    {"role": "placeholder", "content": "{{ history }}"},
    {"role": "user", "content": "{{ question }}"},
]
VARIABLES = {"product": {"type": "string", "default": "Keel"}, "question": "string"}


@pytest.fixture
def registry(engine: Engine) -> PromptRegistry:
    return PromptRegistry(engine)


def create(registry: PromptRegistry, name: str = "support", **kwargs: Any) -> PromptVersion:
    fields: dict[str, Any] = {"type": "chat", "template": CHAT, "variables": VARIABLES, "actor": "alice"}
    fields.update(kwargs)
    return registry.create(name, **fields)


def counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as connection:
        return (
            connection.execute(select(func.count()).select_from(prompts)).scalar_one(),
            connection.execute(select(func.count()).select_from(prompt_versions)).scalar_one(),
        )


def test_create_then_versions_are_numbered_and_kept(registry: PromptRegistry, engine: Engine) -> None:
    v1 = create(registry, commit_message="first", model_config={"model": "gpt-4o-mini"})
    assert (v1.version, v1.author, v1.commit_message) == (1, "alice", "first")
    v2 = registry.add_version(
        "support",
        template=[{"role": "user", "content": "Plain {{ q }}"}],
        variables={"q": "string"},
        actor="bob",
    )
    assert (v2.version, v2.prompt_type, v2.author) == (2, "chat", "bob")
    stored = registry.get_version("support", version=1)
    assert stored.template == CHAT and stored.model_config == {"model": "gpt-4o-mini"}
    assert stored.render({"question": "q"}).chat_messages()[0] == {
        "role": "system",
        "content": "You support Keel.",
    }
    assert [v.version for v in registry.list_versions("support")] == [1, 2]
    assert registry.get_version("support", label="latest").version == 2
    assert read_changes(engine)["prompts"] == 2


def test_a_chat_prompt_refuses_a_text_template_and_nothing_is_written(
    registry: PromptRegistry, engine: Engine
) -> None:
    create(registry)
    with pytest.raises(InvalidRequest, match="chat prompt's template is a non-empty list"):
        registry.add_version("support", template="text", actor="bob")
    assert counts(engine) == (1, 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"template": "{{ x }}", "type": "text", "variables": None}, "undeclared variable 'x'"),
        ({"template": "{% if %}", "type": "text", "variables": None}, "does not compile"),
        ({"type": "prose"}, "type must be 'text' or 'chat'"),
        ({"model_config": {"temperature": "hot"}}, "model_config.temperature"),
        ({"commit_message": 5}, "'commit_message' must be a string"),
    ],
)
def test_bad_input_writes_nothing(
    registry: PromptRegistry, engine: Engine, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        create(registry, **kwargs)
    assert counts(engine) == (0, 0)
    assert read_audit(engine) == [] and "prompts" not in read_changes(engine)


def test_names_are_unique_and_checked(registry: PromptRegistry) -> None:
    create(registry)
    with pytest.raises(InvalidRequest, match="'support' already exists"):
        create(registry)
    with pytest.raises(InvalidRequest, match="Invalid prompt name"):
        create(registry, name="bad@name")
    with pytest.raises(NotFound, match="Unknown prompt 'nope'"):
        registry.add_version("nope", template="x", actor="a")


def test_labels_move_and_roll_back_step_by_step(registry: PromptRegistry, engine: Engine) -> None:
    create(registry)
    for _ in range(2):
        registry.add_version(
            "support", template=CHAT, variables={**VARIABLES, "extra": {"default": ""}}, actor="a"
        )
    registry.set_label("support", "production", 1, actor="root", admin=True)
    registry.set_label("support", "production", 2, actor="root", admin=True)
    registry.set_label("support", "production", 3, actor="root", admin=True)
    assert registry.get_version("support").version == 3  # no label: production
    assert registry.rollback("support", "production", actor="root", admin=True).version == 2
    assert registry.rollback("support", "production", actor="root", admin=True).version == 1
    with pytest.raises(InvalidRequest, match="no earlier version to roll back to"):
        registry.rollback("support", "production", actor="root", admin=True)
    registry.set_label("support", "production", 3, actor="root", admin=True)
    assert registry.rollback("support", "production", actor="root", admin=True).version == 1
    moves = [
        (m.from_version, m.to_version, m.action) for m in registry.label_history("support", "production")
    ]
    assert moves == [
        (None, 1, "set"),
        (1, 2, "set"),
        (2, 3, "set"),
        (3, 2, "rollback"),
        (2, 1, "rollback"),
        (1, 3, "set"),
        (3, 1, "rollback"),
    ]
    audit = [e for e in read_audit(engine, target_type="prompt") if e.action.startswith("prompt.label")]
    assert audit[0].action == "prompt.label.rollback"
    assert audit[0].before == {"label": "production", "version": 3, "protected": True}
    assert audit[0].after == {"label": "production", "version": 1, "protected": True}
    assert audit[0].actor == "root" and len(audit) == 7


def test_protected_labels_move_only_for_admins(registry: PromptRegistry, engine: Engine) -> None:
    create(registry)
    registry.add_version("support", template=CHAT, variables=VARIABLES, actor="a")
    with pytest.raises(PermissionDenied, match="'production' of prompt 'support' is protected"):
        registry.set_label("support", "production", 1, actor="bob", admin=False)
    staging = registry.set_label("support", "staging", 1, actor="bob", admin=False)
    assert not staging.protected
    registry.set_label("support", "staging", 2, actor="bob", admin=False)
    assert registry.rollback("support", "staging", actor="bob", admin=False).version == 1
    with pytest.raises(PermissionDenied, match="Only an admin"):
        registry.set_label("support", "staging", 2, actor="bob", admin=False, protected=True)
    registry.set_label("support", "staging", 2, actor="root", admin=True, protected=True)
    with pytest.raises(PermissionDenied, match="protected"):
        registry.rollback("support", "staging", actor="bob", admin=False)
    assert registry.get_version("support", label="staging").version == 2


def test_label_errors(registry: PromptRegistry) -> None:
    create(registry)
    with pytest.raises(NotFound, match="has no version 7"):
        registry.set_label("support", "staging", 7, actor="a", admin=True)
    with pytest.raises(InvalidRequest, match="'latest' is automatic"):
        registry.set_label("support", "latest", 1, actor="a", admin=True)
    with pytest.raises(InvalidRequest, match="Invalid label"):
        registry.set_label("support", "bad label", 1, actor="a", admin=True)
    with pytest.raises(NotFound, match="has no label 'production'"):
        registry.get_version("support")
    with pytest.raises(NotFound, match="has no label 'canary'"):
        registry.rollback("support", "canary", actor="a", admin=True)


def test_setting_a_label_where_it_points_is_a_no_op(registry: PromptRegistry, engine: Engine) -> None:
    create(registry)
    registry.set_label("support", "staging", 1, actor="a", admin=False)
    before = read_changes(engine)["prompts"]
    registry.set_label("support", "staging", 1, actor="a", admin=False)
    assert read_changes(engine)["prompts"] == before
    assert len(registry.label_history("support")) == 1


def test_gates_are_asked_before_a_label_moves(registry: PromptRegistry) -> None:
    asked: list[tuple[str, int, str, bool]] = []

    class EvalGate:
        def check(self, version: PromptVersion, label: str, *, protected: bool) -> None:
            asked.append((version.prompt_name, version.version, label, protected))
            if protected and version.version == 2:
                raise PermissionDenied("version 2 has not passed the eval gate")

    registry.gates.append(EvalGate())
    create(registry)
    registry.add_version("support", template=CHAT, variables=VARIABLES, actor="a")
    registry.set_label("support", "production", 1, actor="root", admin=True)
    with pytest.raises(PermissionDenied, match="eval gate"):
        registry.set_label("support", "production", 2, actor="root", admin=True)
    registry.set_label("support", "staging", 2, actor="root", admin=True)
    assert asked == [
        ("support", 1, "production", True),
        ("support", 2, "production", True),
        ("support", 2, "staging", False),
    ]
    assert registry.get_version("support").version == 1


def test_push_adds_versions_only_for_real_changes(registry: PromptRegistry, engine: Engine) -> None:
    fields: dict[str, Any] = {"type": "chat", "template": CHAT, "variables": VARIABLES, "actor": "ci"}
    first = registry.push("support", **fields)
    assert (first.created, first.changed, first.version.version) == (True, True, 1)
    again = registry.push("support", **fields, commit_message="no change")
    assert (again.created, again.changed, again.version.version) == (False, False, 1)
    changed = registry.push("support", **{**fields, "model_config": {"temperature": 0}})
    assert (changed.created, changed.changed, changed.version.version) == (False, True, 2)
    with pytest.raises(InvalidRequest, match="is a chat prompt; the pushed definition is text"):
        registry.push("support", type="text", template="x", actor="ci")
    assert counts(engine) == (1, 2)


def test_diff_is_readable(registry: PromptRegistry) -> None:
    create(registry, model_config={"temperature": 0.2})
    registry.add_version(
        "support",
        template=[CHAT[0], {"role": "user", "content": "Q: {{ question }}"}],
        variables=VARIABLES,
        model_config={"temperature": 0.5},
        actor="a",
    )
    diff = registry.diff("support", 1, 2)
    assert diff.startswith("--- support#1\n+++ support#2")
    assert "-[placeholder]" in diff and "+Q: {{ question }}" in diff
    assert "-temperature: 0.2" in diff and "+temperature: 0.5" in diff
    assert registry.diff("support", 1, 1) == ""


def test_creation_is_audited_with_the_team(registry: PromptRegistry, engine: Engine) -> None:
    create(registry, team_id="t1", commit_message="hello")
    registry.add_version("support", template=CHAT, variables=VARIABLES, actor="bob", commit_message="two")
    entries = read_audit(engine, team_id="t1")
    assert [(e.action, e.actor, e.target_id) for e in entries] == [
        ("prompt.version.create", "bob", "support"),
        ("prompt.create", "alice", "support"),
    ]
    assert entries[0].after == {"version": 2, "commit_message": "two"}


def test_list_and_team_filter(registry: PromptRegistry) -> None:
    create(registry, name="a", team_id="t1")
    create(registry, name="b", team_id="t2")
    create(registry, name="c")
    registry.set_label("a", "staging", 1, actor="x", admin=True)
    summaries = registry.list_prompts()
    assert [(s.name, s.latest_version) for s in summaries] == [("a", 1), ("b", 1), ("c", 1)]
    assert summaries[0].labels["staging"].version == 1
    assert [s.name for s in registry.list_prompts(team_id="t1")] == ["a", "c"]


def test_on_change_runs_after_each_commit(engine: Engine) -> None:
    calls: list[int] = []
    registry = PromptRegistry(engine, on_change=lambda: calls.append(read_changes(engine)["prompts"]))
    create(registry)
    registry.set_label("support", "staging", 1, actor="a", admin=False)
    assert calls == [1, 2]
    with pytest.raises(InvalidRequest):
        registry.add_version("support", template="x", actor="a")
    assert calls == [1, 2]
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(prompt_label_history)).scalar_one() == 1


def test_concurrent_new_versions_get_distinct_numbers(registry: PromptRegistry, database_url: str) -> None:
    create(registry)
    engines = [create_store_engine(database_url) for _ in range(4)]
    start = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def add(engine: Engine) -> None:
        start.wait()
        try:
            PromptRegistry(engine).add_version("support", template=CHAT, variables=VARIABLES, actor="a")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for e in engines:
        e.dispose()
    assert errors == []
    assert [v.version for v in registry.list_versions("support")] == [1, 2, 3, 4, 5]
