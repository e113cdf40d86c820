"""Eval suites: a YAML file naming a dataset, the prompts and models to cross, the
scorers, repeats, limits and the gate.

    name: support-answers
    dataset: cases.jsonl                 # JSONL or CSV, relative to this file
    prompts:
      - support-answer@production        # a registry reference (name@label, name#3, name)
      - name: concise                    # or inline, in the prompt-file format
        messages: [{role: user, content: "Answer briefly: {{ question }}"}]
      - file: prompts/support.yaml       # or a prompt file
    models: [demo]                       # default: each prompt's model_config.model
    params: {temperature: 0, max_tokens: 64}
    repeats: 1
    concurrency: 16
    max_cost_usd: 2.0
    scorers:
      - exact_match: {normalize: [lower, strip_punctuation]}
      - name: safe                       # the metric's name (default: the scorer's kind)
        refusal: {expect: true}
    gate:
      baseline: support-answer@production
      candidate: concise
      rules: [{metric: exact_match, max_drop: 0.02}]

Every problem is a ``ConfigError`` whose locations name the file and the key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from keel.core import ConfigError, ConfigProblem, JSONObject
from keel.evals._gate import GateSettings

_PROMPT_FILE_KEYS = frozenset({"name", "type", "template", "messages", "variables", "model_config"})


class _SuiteModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    description: str = ""
    dataset: str | dict[str, Any]
    prompts: list[str | dict[str, Any]] = Field(default_factory=list)
    models: list[str] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)
    repeats: int = Field(default=1, ge=1, le=100)
    concurrency: int = Field(default=8, ge=1, le=512)
    max_cost_usd: float | None = Field(default=None, gt=0)
    retries: int = Field(default=3, ge=0, le=10)
    timeout_s: float = Field(default=120.0, gt=0)
    embedding_model: str | None = None
    scorers: list[str | dict[str, Any]] = Field(min_length=1)
    gate: GateSettings | None = None
    tags: list[str] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PromptSpec:
    """One prompt of the matrix: a registry reference (``ref``) or an inline/file prompt
    (``inline``: the prompt-file mapping). ``label`` names it in variant ids."""

    label: str
    ref: str | None = None
    inline: Mapping[str, Any] | None = None
    location: str = ""


@dataclass(frozen=True, slots=True)
class ScorerSpec:
    """One scorer entry: the metric name, the registered kind and its settings."""

    name: str
    kind: str
    settings: Mapping[str, Any]
    location: str


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    path: Path
    format: str  # jsonl | csv
    id_field: str = "id"
    expected_field: str = "expected"
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class Suite:
    """A loaded suite; ``path`` is its file (relative paths in it are resolved against
    its folder); ``source`` is the parsed mapping, stored with each run."""

    path: Path
    name: str
    description: str
    dataset: DatasetSpec
    prompts: tuple[PromptSpec, ...]
    models: tuple[str, ...]
    params: JSONObject
    repeats: int
    concurrency: int
    max_cost_usd: float | None
    retries: int
    timeout_s: float
    embedding_model: str | None
    scorers: tuple[ScorerSpec, ...]
    gate: GateSettings | None
    tags: tuple[str, ...]
    source: JSONObject = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.path.parent


def load_suite(path: Path) -> Suite:
    """Read and check ``path``. Scorers are checked when built (``build_scorers``); the
    dataset is read by ``load_dataset``."""
    where = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError([ConfigProblem(where, exc.strerror or str(exc))]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"{where}:{mark.line + 1}" if mark is not None else where
        raise ConfigError(
            [ConfigProblem(at, f"invalid YAML: {getattr(exc, 'problem', None) or exc}")]
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            [ConfigProblem(where, "a suite is a mapping (name, dataset, prompts, scorers ...)")]
        )
    try:
        model = _SuiteModel.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            [ConfigProblem(_location(where, err["loc"]), err["msg"]) for err in exc.errors()]
        ) from None
    problems: list[ConfigProblem] = []
    prompts = _prompts(model.prompts, path, problems)
    scorers = _scorers(model.scorers, where, problems)
    dataset = _dataset(model.dataset, path, problems)
    if not prompts and model.gate is not None and not model.models:
        problems.append(ConfigProblem(f"{where}: gate", "a gate needs two variants to compare"))
    names = [s.name for s in scorers]
    for duplicate in sorted({n for n in names if names.count(n) > 1}):
        problems.append(ConfigProblem(f"{where}: scorers", f"two scorers are named {duplicate!r}; name one"))
    labels = [p.label for p in prompts]
    for duplicate in sorted({n for n in labels if labels.count(n) > 1}):
        problems.append(ConfigProblem(f"{where}: prompts", f"two prompts are named {duplicate!r}"))
    if model.gate is not None:
        try:
            from keel.evals._gate import check_gate

            check_gate(model.gate, names)
        except ConfigError as exc:
            problems.extend(
                ConfigProblem(f"{where}: gate.{p.location}".rstrip("."), p.message) for p in exc.problems
            )
    if problems:
        raise ConfigError(problems)
    assert dataset is not None
    return Suite(
        path=path,
        name=model.name,
        description=model.description,
        dataset=dataset,
        prompts=tuple(prompts),
        models=tuple(model.models),
        params=dict(model.params),
        repeats=model.repeats,
        concurrency=model.concurrency,
        max_cost_usd=model.max_cost_usd,
        retries=model.retries,
        timeout_s=model.timeout_s,
        embedding_model=model.embedding_model,
        scorers=tuple(scorers),
        gate=model.gate,
        tags=tuple(model.tags),
        source=data,
    )


def _location(where: str, loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return f"{where}: {path}" if path else where


def _prompts(
    entries: list[str | dict[str, Any]], path: Path, problems: list[ConfigProblem]
) -> list[PromptSpec]:
    specs: list[PromptSpec] = []
    for i, entry in enumerate(entries):
        location = f"{path}: prompts[{i}]"
        if isinstance(entry, str):
            specs.append(PromptSpec(label=entry, ref=entry, location=location))
            continue
        if "file" in entry:
            if set(entry) - {"file", "name"}:
                problems.append(ConfigProblem(location, "a prompt file entry has only 'file' (and 'name')"))
                continue
            from keel.prompts import read_prompt_file

            file = (path.parent / str(entry["file"])).resolve()
            try:
                parsed = read_prompt_file(file)
            except Exception as exc:
                problems.append(ConfigProblem(f"{location}.file", getattr(exc, "message", str(exc))))
                continue
            inline: dict[str, Any] = {
                "name": entry.get("name", parsed.name),
                "type": parsed.type,
                "template": parsed.template,
                "variables": parsed.variables,
                "model_config": parsed.model_config,
            }
            specs.append(PromptSpec(label=str(inline["name"]), inline=inline, location=location))
            continue
        unknown = sorted(set(entry) - _PROMPT_FILE_KEYS)
        if unknown:
            problems.append(
                ConfigProblem(
                    f"{location}.{unknown[0]}", f"unknown key (keys: {', '.join(sorted(_PROMPT_FILE_KEYS))})"
                )
            )
            continue
        if "name" not in entry:
            problems.append(ConfigProblem(location, "an inline prompt needs a 'name'"))
            continue
        if ("template" in entry) == ("messages" in entry):
            problems.append(ConfigProblem(location, "give 'template' or 'messages' (one of them)"))
            continue
        specs.append(PromptSpec(label=str(entry["name"]), inline=dict(entry), location=location))
    return specs


def _scorers(
    entries: list[str | dict[str, Any]], where: str, problems: list[ConfigProblem]
) -> list[ScorerSpec]:
    specs: list[ScorerSpec] = []
    for i, entry in enumerate(entries):
        location = f"{where}: scorers[{i}]"
        if isinstance(entry, str):
            specs.append(ScorerSpec(entry, entry, {}, f"{location}.{entry}"))
            continue
        kinds = [key for key in entry if key != "name"]
        if len(kinds) != 1:
            problems.append(
                ConfigProblem(
                    location, "a scorer entry has one key naming the scorer (and optionally 'name')"
                )
            )
            continue
        kind = kinds[0]
        settings = entry[kind]
        if settings is None:
            settings = {}
        if not isinstance(settings, dict):
            problems.append(ConfigProblem(f"{location}.{kind}", "a scorer's settings are a mapping"))
            continue
        name = entry.get("name", kind)
        if not isinstance(name, str) or not name:
            problems.append(ConfigProblem(f"{location}.name", "a metric name is a non-empty string"))
            continue
        specs.append(ScorerSpec(name, str(kind), settings, f"{location}.{kind}"))
    return specs


def _dataset(entry: str | dict[str, Any], path: Path, problems: list[ConfigProblem]) -> DatasetSpec | None:
    location = f"{path}: dataset"
    options: dict[str, Any] = {"path": entry} if isinstance(entry, str) else dict(entry)
    unknown = sorted(set(options) - {"path", "format", "id_field", "expected_field", "limit"})
    if unknown:
        problems.append(
            ConfigProblem(
                f"{location}.{unknown[0]}", "unknown key (path, format, id_field, expected_field, limit)"
            )
        )
        return None
    if not isinstance(options.get("path"), str):
        problems.append(ConfigProblem(f"{location}.path", "the dataset's path is required"))
        return None
    file = (path.parent / options["path"]).resolve()
    fmt = options.get("format") or ("csv" if file.suffix.lower() == ".csv" else "jsonl")
    if fmt not in ("jsonl", "csv"):
        problems.append(ConfigProblem(f"{location}.format", f"unknown format {fmt!r} (jsonl or csv)"))
        return None
    if not file.is_file():
        problems.append(ConfigProblem(f"{location}.path", f"no such file: {file}"))
        return None
    limit = options.get("limit")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        problems.append(ConfigProblem(f"{location}.limit", "a positive integer"))
        return None
    return DatasetSpec(
        file, fmt, str(options.get("id_field", "id")), str(options.get("expected_field", "expected")), limit
    )


def with_candidate(suite: Suite, prompt: str) -> Suite:
    """``suite`` with the gate's candidate prompt replaced by ``prompt``: a registry
    reference (``support-answer@staging``) or ``file:PATH`` (a prompt file). This is how
    CI tries a pull request's prompt against production without editing the suite."""
    if suite.gate is None:
        raise ConfigError([ConfigProblem(f"{suite.path}: gate", "--candidate needs a suite with a gate")])
    if suite.gate.candidate is None:
        raise ConfigError(
            [ConfigProblem(f"{suite.path}: gate", "--candidate needs the gate to name its candidate")]
        )
    label = suite.gate.candidate.split(" / ")[0]
    index = next((i for i, p in enumerate(suite.prompts) if p.label == label), None)
    if index is None:
        raise ConfigError(
            [ConfigProblem(f"{suite.path}: gate.candidate", f"names no prompt of the suite ({label!r})")]
        )
    location = f"--candidate {prompt}"
    problems: list[ConfigProblem] = []
    if prompt.startswith("file:"):
        entry: dict[str, Any] = {"file": str(Path(prompt[5:]).resolve()), "name": label}
        replaced = _prompts([entry], Path.cwd() / "suite", problems)
    else:
        replaced = [PromptSpec(label=label, ref=prompt, location=location)]
    if problems:
        raise ConfigError([ConfigProblem(location, p.message) for p in problems])
    prompts = list(suite.prompts)
    prompts[index] = replaced[0]
    from dataclasses import replace

    return replace(suite, prompts=tuple(prompts))
