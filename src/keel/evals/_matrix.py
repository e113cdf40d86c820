"""The suite's matrix: prompts resolved to versions, crossed with models into variants,
and every case rendered into the request each variant sends, checked before any call is
made (a variable missing from a case names the case and its line)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from keel.core import ConfigError, ConfigProblem, InvalidRequest, JSONObject, KeelError
from keel.evals._results import Variant
from keel.evals._suite import PromptSpec, Suite
from keel.evals._types import Case
from keel.prompts import PromptType, PromptVersion, VersionContent, parse_prompt_ref
from keel.prompts._template import used_variables

# name, label, version → the version (PromptRegistry.get_version or PromptClient.get).
PromptResolver = Callable[..., PromptVersion]


@dataclass(frozen=True, slots=True)
class ResolvedPrompt:
    spec: PromptSpec
    version: PromptVersion
    identity: str  # support-answer#3, or inline:<hash> (what the cache key and reports name)
    registry: bool


@dataclass(frozen=True, slots=True)
class Plan:
    variants: list[Variant]
    # (variant id, case id) → the request body (without repeat-specific parts).
    bodies: dict[tuple[str, str], JSONObject]

    def cache_key(self, variant: str, case_id: str, repeat: int) -> str:
        body = self.bodies[(variant, case_id)]
        blob = orjson.dumps([body, repeat], option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(blob).hexdigest()


def resolve_prompts(suite: Suite, resolver: PromptResolver | None) -> list[ResolvedPrompt]:
    resolved: list[ResolvedPrompt] = []
    problems: list[ConfigProblem] = []
    for spec in suite.prompts:
        try:
            if spec.ref is not None:
                if resolver is None:
                    raise InvalidRequest("registry prompts need the store or a remote Keel")
                ref = parse_prompt_ref(spec.ref)
                version = resolver(ref.name, label=ref.label, version=ref.version)
                resolved.append(ResolvedPrompt(spec, version, version.ref, True))
            else:
                version = _inline_version(spec)
                digest = hashlib.sha256(
                    orjson.dumps(version.to_json(), option=orjson.OPT_SORT_KEYS)
                ).hexdigest()
                resolved.append(ResolvedPrompt(spec, version, f"inline:{spec.label}:{digest[:10]}", False))
        except KeelError as exc:
            problems.append(ConfigProblem(spec.location, exc.message))
    if problems:
        raise ConfigError(problems)
    return resolved


def _inline_version(spec: PromptSpec) -> PromptVersion:
    data = dict(spec.inline or {})
    template = data.get("template", data.get("messages"))
    prompt_type: PromptType = "chat" if isinstance(template, list) else "text"
    if data.get("type") in ("chat", "text"):
        prompt_type = data["type"]
    elif data.get("type") is not None:
        raise InvalidRequest(f"unknown prompt type {data['type']!r} (chat or text)")
    variables = data.get("variables")
    if variables is None:
        # Undeclared: every variable the template reads, as a required string (CSV
        # values are strings; a JSONL suite wanting other types declares them).
        sources = (
            [template]
            if isinstance(template, str)
            else [
                m.get("content")
                for m in template or []
                if isinstance(m, dict) and isinstance(m.get("content"), str)
            ]
        )
        names: set[str] = set()
        for source in sources:
            names |= used_variables(str(source), "template", f"'{spec.label}'")
        variables = {name: "string" for name in sorted(names)}
    content = VersionContent.parse(
        prompt_type,
        template=template,
        variables=variables,
        model_config=data.get("model_config"),
        prompt=spec.label,
    )
    return PromptVersion(
        prompt_name=spec.label,
        prompt_type=prompt_type,
        version=0,
        template=content.template,
        variables=content.variables,
        model_config=content.model_config,
        commit_message="",
        author="suite",
        created_at=datetime.now(UTC),
    )


def plan(suite: Suite, cases: Sequence[Case], prompts: Sequence[ResolvedPrompt]) -> Plan:
    """Variants and request bodies; every problem names the case (``InvalidRequest``)."""
    variants: list[Variant] = []
    bodies: dict[tuple[str, str], JSONObject] = {}
    params = dict(suite.params)
    entries: list[ResolvedPrompt | None] = list(prompts) or [None]
    for prompt in entries:
        models = list(suite.models)
        if not models:
            model = prompt.version.model_config.get("model") if prompt is not None else None
            if not model:
                where = prompt.spec.location if prompt is not None else str(suite.path)
                raise ConfigError(
                    [ConfigProblem(where, "no model: list 'models' in the suite or set model_config.model")]
                )
            models = [str(model)]
        for model in models:
            label = prompt.spec.label if prompt is not None else "messages"
            variant = Variant(
                id=f"{label} / {model}",
                prompt=label,
                prompt_version=prompt.identity if prompt is not None else "dataset",
                model=model,
            )
            variants.append(variant)
            for case in cases:
                bodies[(variant.id, case.id)] = _body(suite, case, prompt, model, params)
    return Plan(variants, bodies)


def _body(
    suite: Suite, case: Case, prompt: ResolvedPrompt | None, model: str, params: JSONObject
) -> JSONObject:
    where = f"case {case.id!r} ({suite.dataset.path.name}:{case.line})"
    history = list(case.messages or [])
    if prompt is None:
        if not history:
            raise InvalidRequest(f"{where}: the suite has no prompts, so each case needs 'messages'")
        return {**params, "model": model, "messages": history}
    try:
        rendered = prompt.version.render(case.vars)
    except InvalidRequest as exc:
        raise InvalidRequest(f"{where}: {exc.message}") from None
    if prompt.registry:
        # The gateway expands the pinned version itself, so the request log names it.
        body: JSONObject = {
            **params,
            "model": model,
            "prompt": {
                "name": prompt.version.prompt_name,
                "version": prompt.version.version,
                "variables": dict(case.vars),
            },
        }
        if history:
            body["messages"] = history
        return body
    config = {k: v for k, v in prompt.version.model_config.items() if k != "model"}
    return {**config, **params, "model": model, "messages": rendered.chat_messages(history)}


def select_variant(selector: str, variants: Sequence[Variant], *, role: str) -> Variant:
    """The variant ``selector`` names: its id, or a prompt label or model that only one
    variant has."""
    for variant in variants:
        if variant.id == selector:
            return variant
    for attribute in ("prompt", "model", "prompt_version"):
        matches = [v for v in variants if getattr(v, attribute) == selector]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidRequest(
                f"gate {role} {selector!r} matches {len(matches)} variants; name one: "
                + ", ".join(repr(v.id) for v in matches)
            )
    raise InvalidRequest(
        f"gate {role} {selector!r} names no variant (variants: {', '.join(repr(v.id) for v in variants)})"
    )
