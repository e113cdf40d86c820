"""The in-memory catalog: resolution from memory, and refresh on change."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import Engine

from keel.core import InvalidRequest, NotFound
from keel.prompts import PromptCatalog, PromptRegistry, expand_prompt_request
from keel.store import create_store_engine

TEMPLATE = [{"role": "user", "content": "{{ q }} (v{{ n }})"}]


def seed(registry: PromptRegistry, versions: int = 2) -> None:
    registry.create(
        "faq",
        type="chat",
        template=TEMPLATE,
        variables={"q": "string", "n": {"type": "integer", "default": 1}},
        model_config={"model": "m1"},
        actor="a",
    )
    for n in range(2, versions + 1):
        registry.add_version(
            "faq",
            template=TEMPLATE,
            variables={"q": "string", "n": {"type": "integer", "default": n}},
            model_config={"model": f"m{n}"},
            actor="a",
        )
    registry.set_label("faq", "production", 1, actor="a", admin=True)


def test_resolve_by_label_version_latest_and_default(engine: Engine) -> None:
    registry = PromptRegistry(engine)
    seed(registry)
    registry.set_label("faq", "staging", 2, actor="a", admin=False)
    catalog = PromptCatalog(engine)
    catalog.load()
    assert catalog.resolve("faq").version == 1
    assert catalog.resolve("faq", label="staging").version == 2
    assert catalog.resolve("faq", label="latest").version == 2
    assert catalog.resolve("faq", version=1).model_config == {"model": "m1"}
    with pytest.raises(NotFound, match="Unknown prompt 'other'"):
        catalog.resolve("other")
    with pytest.raises(NotFound, match="has no label 'canary'"):
        catalog.resolve("faq", label="canary")
    with pytest.raises(NotFound, match="has no version 3"):
        catalog.resolve("faq", version=3)
    with pytest.raises(InvalidRequest, match="not both"):
        catalog.resolve("faq", label="staging", version=1)
    assert catalog.names() == ["faq"]


def test_resolve_reads_memory_only(engine: Engine) -> None:
    registry = PromptRegistry(engine)
    seed(registry)
    catalog = PromptCatalog(engine)
    catalog.load()
    engine.dispose()
    catalog.engine = create_store_engine("sqlite:////nonexistent/dir/keel.db")  # any store access would fail
    assert catalog.resolve("faq").version == 1


def test_refresh_reloads_only_when_the_topic_moved_and_keeps_compiled_versions(engine: Engine) -> None:
    registry = PromptRegistry(engine)
    seed(registry)
    catalog = PromptCatalog(engine)
    catalog.load()
    v1 = catalog.resolve("faq")
    v1.render({"q": "x"})
    assert catalog.refresh() is False
    registry.set_label("faq", "production", 2, actor="a", admin=True)
    assert catalog.refresh() is True
    assert catalog.resolve("faq").version == 2
    assert catalog.resolve("faq", version=1) is v1  # immutable: not rebuilt or recompiled


def test_registry_on_change_reloads_the_local_catalog_at_once(engine: Engine) -> None:
    catalog = PromptCatalog(engine)
    catalog.load()
    registry = PromptRegistry(engine, on_change=catalog.reload)
    seed(registry)
    assert catalog.resolve("faq").version == 1


async def test_a_label_moved_through_another_engine_reaches_the_catalog_within_the_interval(
    engine: Engine, database_url: str
) -> None:
    seed(PromptRegistry(engine))
    catalog = PromptCatalog(engine, refresh_interval=0.05)
    await catalog.start()
    try:
        body = {"model": "prompt:faq", "prompt": {"variables": {"q": "hi"}}}
        first = expand_prompt_request(catalog, body)
        assert first is not None and first.prompt_version == 1 and first.body["model"] == "m1"
        other_process = create_store_engine(database_url)  # another gateway's or the CLI's engine
        try:
            PromptRegistry(other_process).set_label("faq", "production", 2, actor="a", admin=True)
            moved_at = time.monotonic()
            while catalog.resolve("faq").version != 2:
                assert time.monotonic() - moved_at < 2.0, "label move not picked up"
                await asyncio.sleep(0.01)
            second = expand_prompt_request(catalog, body)
            assert second is not None and second.prompt_version == 2
            assert second.body == {"model": "m2", "messages": [{"role": "user", "content": "hi (v2)"}]}
        finally:
            other_process.dispose()
    finally:
        await catalog.stop()
    assert catalog._task is None


async def test_a_failing_store_keeps_the_loaded_prompts(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    seed(PromptRegistry(engine))
    catalog = PromptCatalog(engine, refresh_interval=0.02)
    await catalog.start()
    try:
        catalog.engine = create_store_engine("sqlite:////nonexistent/dir/keel.db")
        await asyncio.sleep(0.1)
        assert catalog.resolve("faq").version == 1
        assert "prompt catalog refresh failed" in caplog.text
    finally:
        await catalog.stop()
