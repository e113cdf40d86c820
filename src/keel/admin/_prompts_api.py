"""Admin API routes: prompts, versions, labels, rollback, rendering previews.

Who may do what: every non-service key reads the organisation-wide prompts and its own
team's; admins write everything, team admins their team's prompts; protected labels
(``production``) move only for admins. A prompt the caller may not read answers 404,
as an unknown one does. Routes are plain functions: FastAPI runs them in its thread
pool, so the registry's blocking store calls never hold up the event loop.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from keel.access import Principal
from keel.admin._auth import AppCaller, Caller, actor_of, require_admin, require_team_admin
from keel.core import InvalidRequest, JSONObject, NotFound
from keel.prompts import PromptRegistry, PromptSummary, PromptVersion, prompt_stats
from keel.spend import format_usd, parse_moment

router = APIRouter(prefix="/prompts", tags=["prompts"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class NewVersion(_Body):
    # Shapes are checked by the registry, whose messages name the exact problem.
    template: Any
    variables: Any = None
    config: Any = Field(None, alias="model_config")
    commit_message: str = ""


class NewPrompt(NewVersion):
    name: str
    type: str | None = None  # default: chat if the template is a list, else text
    team_id: str | None = None


class LabelMove(_Body):
    version: int = Field(ge=1)
    protected: bool | None = None


class RenderRequest(_Body):
    label: str | None = None
    version: int | None = Field(None, ge=1)
    variables: dict[str, Any] = Field(default_factory=dict)
    # The caller's own messages, spliced in at the history placeholder.
    messages: list[Any] = Field(default_factory=list)


def _registry(request: Request) -> PromptRegistry:
    registry: PromptRegistry = request.app.state.prompts
    return registry


def _readable(who: Principal, summary: PromptSummary) -> None:
    if not who.is_admin and summary.team_id is not None and summary.team_id != who.team_id:
        raise NotFound(f"Unknown prompt '{summary.name}'.", param="name")


def _prompt_for_write(registry: PromptRegistry, who: Principal, name: str) -> PromptSummary:
    summary = registry.get_prompt(name)
    _readable(who, summary)
    _require_writer(who, summary.team_id)
    return summary


def _require_writer(who: Principal, team_id: str | None) -> None:
    if team_id is None:
        require_admin(who)
    else:
        require_team_admin(who, team_id)


def _version_json(version: PromptVersion) -> JSONObject:
    return version.to_json()


@router.post("", status_code=201)
def create_prompt(body: NewPrompt, request: Request, who: Caller) -> JSONObject:
    """Create a prompt with its first version. A team admin's prompt belongs to their team."""
    team_id = body.team_id if body.team_id is not None or who.is_admin else who.team_id
    _require_writer(who, team_id)
    version = _registry(request).create(
        body.name,
        type=body.type or ("chat" if isinstance(body.template, list) else "text"),
        template=body.template,
        variables=body.variables,
        model_config=body.config,
        commit_message=body.commit_message,
        team_id=team_id,
        actor=actor_of(who),
    )
    return _version_json(version)


@router.get("")
def list_prompts(request: Request, who: Caller) -> JSONObject:
    registry = _registry(request)
    summaries = registry.list_prompts() if who.is_admin else registry.list_prompts(team_id=who.team_id or "")
    return {"data": [s.to_json() for s in summaries]}


@router.get("/{name}")
def get_prompt(name: str, request: Request, who: Caller) -> JSONObject:
    """The prompt, its labels and a line per version."""
    registry = _registry(request)
    summary = registry.get_prompt(name)
    _readable(who, summary)
    versions = [
        {
            "version": v.version,
            "commit_message": v.commit_message,
            "author": v.author,
            "created_at": v.created_at.isoformat(),
        }
        for v in registry.list_versions(name)
    ]
    return {**summary.to_json(), "versions": versions}


@router.post("/{name}/versions", status_code=201)
def add_version(name: str, body: NewVersion, request: Request, who: Caller) -> JSONObject:
    registry = _registry(request)
    _prompt_for_write(registry, who, name)
    version = registry.add_version(
        name,
        template=body.template,
        variables=body.variables,
        model_config=body.config,
        commit_message=body.commit_message,
        actor=actor_of(who),
    )
    return _version_json(version)


@router.get("/{name}/versions")
def list_versions(name: str, request: Request, who: Caller) -> JSONObject:
    registry = _registry(request)
    _readable(who, registry.get_prompt(name))
    return {"data": [_version_json(v) for v in registry.list_versions(name)]}


@router.get("/{name}/versions/{ref}")
def get_version(name: str, ref: str, request: Request, who: AppCaller) -> JSONObject:
    """``ref``: a version number, or a label (``latest`` included)."""
    registry = _registry(request)
    _readable(who, registry.get_prompt(name))
    if ref.isdigit():
        return _version_json(registry.get_version(name, version=int(ref)))
    return _version_json(registry.get_version(name, label=ref))


@router.get("/{name}/diff")
def diff_versions(name: str, request: Request, who: Caller, a: int, b: int) -> JSONObject:
    """A unified diff of template, variables and model config from version ``a`` to ``b``."""
    registry = _registry(request)
    _readable(who, registry.get_prompt(name))
    return {"name": name, "a": a, "b": b, "diff": registry.diff(name, a, b)}


@router.put("/{name}/labels/{label}")
def set_label(name: str, label: str, body: LabelMove, request: Request, who: Caller) -> JSONObject:
    registry = _registry(request)
    _prompt_for_write(registry, who, name)
    moved = registry.set_label(
        name, label, body.version, actor=actor_of(who), admin=who.is_admin, protected=body.protected
    )
    return {"name": name, **moved.to_json()}


@router.post("/{name}/labels/{label}/rollback")
def rollback_label(name: str, label: str, request: Request, who: Caller) -> JSONObject:
    """Move the label back to the version it pointed to before its last move."""
    registry = _registry(request)
    _prompt_for_write(registry, who, name)
    moved = registry.rollback(name, label, actor=actor_of(who), admin=who.is_admin)
    return {"name": name, **moved.to_json()}


@router.get("/{name}/labels/{label}/history")
def label_history(name: str, label: str, request: Request, who: Caller) -> JSONObject:
    registry = _registry(request)
    _readable(who, registry.get_prompt(name))
    return {"data": [m.to_json() for m in registry.label_history(name, label)]}


@router.post("/{name}/render")
def render_prompt(name: str, body: RenderRequest, request: Request, who: Caller) -> JSONObject:
    """Render a version (by ``label`` or ``version``; neither: ``production``) with
    ``variables``: a preview of what the gateway would send."""
    registry = _registry(request)
    _readable(who, registry.get_prompt(name))
    if body.label is not None and body.version is not None:
        raise InvalidRequest("Give 'label' or 'version', not both.")
    version = registry.get_version(name, label=body.label, version=body.version)
    rendered = version.render(body.variables)
    return {
        "name": name,
        "version": version.version,
        "type": version.prompt_type,
        "text": rendered.text,
        "messages": rendered.chat_messages(body.messages),
        "model_config": version.model_config,
    }


@router.get("/{name}/stats")
def version_stats(
    name: str,
    request: Request,
    who: Caller,
    since: Annotated[str | None, Query(description="7d, 12h, 30m or an ISO time")] = None,
    until: Annotated[str | None, Query(description="ISO time or duration before now")] = None,
) -> JSONObject:
    """Per version: requests, errors, latency p50/p95 (successful requests), tokens and
    cost, from the request log. Admins see every caller's requests; other keys their own
    team's."""
    registry = _registry(request)
    _readable(who, registry.get_prompt(name))
    now = datetime.now(UTC)
    since_at = parse_moment(since, now, param="since") if since else None
    until_at = parse_moment(until, now, param="until") if until else None
    team_id = None if who.is_admin else who.team_id or ""
    stats = prompt_stats(registry.engine, name, since=since_at, until=until_at, team_id=team_id)
    return {
        "name": name,
        "since": since_at.isoformat() if since_at is not None else None,
        "until": until_at.isoformat() if until_at is not None else None,
        "team_id": team_id,
        "data": [{**s.to_json(), "cost_usd": format_usd(s.cost_nanos)} for s in stats],
    }
