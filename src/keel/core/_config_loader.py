"""Load ``keel.yaml`` into ``KeelSettings``, reporting every problem with its location.

Where the file comes from, first match wins: the ``path`` argument, ``$KEEL_CONFIG``,
``./keel.yaml`` if it exists, else no file (embedded defaults only).

Every string value in the file may reference the environment, so secrets stay out of
it (keys are never interpolated):

    ==================  ==================================================
    ``${NAME}``         the value of ``NAME``; unset is a problem
    ``${NAME:-text}``   ``NAME`` if set and non-empty, else ``text``
    ``$${``             a literal ``${``
    ==================  ==================================================

``KEEL_*`` variables are applied after the file and win over it (an empty one counts as
unset):

    =======================  ==============================  ======================
    variable                 setting                         accepts
    =======================  ==============================  ======================
    ``KEEL_CONFIG``          which file to load              a path
    ``KEEL_HOME``            ``home`` (data directory)       a path, ``~`` expanded
    ``KEEL_DATABASE_URL``    ``store.url``                   a SQLAlchemy URL
    ``KEEL_REDIS_URL``       ``redis_url``                   a Redis URL
    ``KEEL_HOST``            ``server.host``                 a host or address
    ``KEEL_PORT``            ``server.port``                 an integer
    ``KEEL_LOG_BODIES``      ``request_log.bodies``          true/false/1/0
    ``KEEL_MAX_BODY_BYTES``  ``server.max_body_bytes``       an integer
    =======================  ==============================  ======================

``home`` is ``$KEEL_HOME``, else ``home:`` in the file (relative to the file's
directory), else ``~/.keel``.

Embedded defaults: a file without a ``providers`` section gets one provider ``local``
(type ``local``); a file without a ``models`` section gets two routes served by it,
``keel-demo`` (chat) and ``all-minilm-l6-v2`` (embedding). A file that declares its own
models gets exactly those. A top-level key with no value (``models:`` with every entry
commented out) counts as absent. Top-level keys starting with ``x-`` are ignored: they
hold YAML anchors (``x-openai: &openai {...}``) for reuse with ``<<: *openai``.

Deployment names: a deployment is named by its ``name`` or else ``<provider>/<model>``.
The same provider/model pair in two routes is the same upstream and shares its default
name (and so its circuit breaker); within one route every name must be distinct, and an
explicit ``name`` must not be used by any other deployment in the whole file.
"""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from keel.core._errors import ConfigError, ConfigProblem
from keel.core._settings import DEMO_CHAT_MODEL, DEMO_EMBEDDING_MODEL, KeelSettings

__all__ = ["check_config", "find_config", "load_settings"]

DEFAULT_CONFIG_NAME = "keel.yaml"
DEFAULT_HOME = "~/.keel"
DEFAULT_PROVIDER = "local"

# A key path into the document: mapping keys and sequence indexes.
KeyPath = tuple[Any, ...]

_REFERENCE = re.compile(
    r"\$\$\{"  # escaped: a literal "${"
    r"|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}"
    r"|\$\{"  # anything else after "${" is malformed
)


_LINE_IN_LOCATION = re.compile(r"\bline (\d+)")


def find_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The config file to load: ``path``, ``$KEEL_CONFIG``, ``./keel.yaml``, or None."""
    env = os.environ if environ is None else environ
    if path is not None:
        return path
    if env.get("KEEL_CONFIG"):
        return Path(env["KEEL_CONFIG"]).expanduser()
    local = Path(DEFAULT_CONFIG_NAME)
    return local if local.is_file() else None


# A check that needs more than core knows (building guard policies, say): it raises
# ``ConfigError`` with dotted locations, which the loader gives their line in the file.
SettingsCheck = Callable[[KeelSettings], object]


def load_settings(
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    checks: Sequence[SettingsCheck] = (),
) -> KeelSettings:
    """Settings from the discovered file, environment and defaults.

    Raises ``ConfigError`` listing every problem found, each with its location.
    ``checks`` run on settings that validated (the CLI passes the guard policy build).
    """
    source = find_config(path, environ)
    settings, problems = _load(source, os.environ if environ is None else environ, checks)
    if problems or settings is None:
        raise ConfigError(problems, source=None if source is None else str(source))
    return settings


def check_config(
    path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    checks: Sequence[SettingsCheck] = (),
) -> list[ConfigProblem]:
    """Every problem in the configuration ``load_settings`` would load; [] when valid."""
    source = find_config(path, environ)
    return _load(source, os.environ if environ is None else environ, checks)[1]


@dataclass
class _Document:
    """The file as plain data, plus where each key sits, for locating problems."""

    data: dict[Any, Any] = field(default_factory=dict)
    lines: dict[KeyPath, int] = field(default_factory=dict)
    # Paths whose value came from a KEEL_* variable: problems there point at the variable.
    env_sources: dict[KeyPath, str] = field(default_factory=dict)
    problems: list[ConfigProblem] = field(default_factory=list)

    def locate(self, path: KeyPath) -> str:
        for end in range(len(path), 0, -1):
            if path[:end] in self.env_sources:
                return f"env {self.env_sources[path[:end]]}"
        dotted = _dotted(path)
        # A missing key has no line of its own: point at the nearest enclosing key.
        for end in range(len(path), 0, -1):
            if path[:end] in self.lines:
                return f"{dotted} (line {self.lines[path[:end]]})"
        return dotted

    def problem(self, path: KeyPath, message: str) -> None:
        self.problems.append(ConfigProblem(self.locate(path), message))


def _load(
    source: Path | None, environ: Mapping[str, str], checks: Sequence[SettingsCheck] = ()
) -> tuple[KeelSettings | None, list[ConfigProblem]]:
    doc = _Document()
    if source is not None:
        try:
            text = source.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None, [ConfigProblem("", f"config file not found: {source}")]
        except (OSError, UnicodeDecodeError) as exc:
            return None, [ConfigProblem("", f"cannot read config file {source}: {exc}")]
        if not _read_yaml(text, environ, doc):
            return None, doc.problems
    # An empty section ("store:" with only comments under it) reads as absent; "x-" keys
    # only hold YAML anchors for reuse elsewhere.
    doc.data = {
        key: value
        for key, value in doc.data.items()
        if value is not None and not (isinstance(key, str) and key.startswith("x-"))
    }
    _resolve_home(doc, source, environ)
    _apply_env_overrides(doc, environ)
    _add_embedded_defaults(doc.data)
    _check_references(doc)
    settings = _validate(doc)
    if settings is not None and not doc.problems:
        _run_checks(doc, settings, checks)
    if source is not None and settings is not None:
        settings = settings.model_copy(update={"source": str(source)})
    return (settings if not doc.problems else None), _in_file_order(doc.problems)


def _run_checks(doc: _Document, settings: KeelSettings, checks: Sequence[SettingsCheck]) -> None:
    for check in checks:
        try:
            check(settings)
        except ConfigError as exc:
            for problem in exc.problems:
                doc.problem(_parse_location(problem.location), problem.message)


_LOCATION_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def _parse_location(location: str) -> KeyPath:
    """``guards.policies.p.input[2].threshold`` as a key path."""
    return tuple(
        int(m.group(1)) if m.group(1) is not None else m.group(2) for m in _LOCATION_PART.finditer(location)
    )


def _in_file_order(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    """By line; problems with no line (environment, defaults) keep their order after."""

    def line(problem: ConfigProblem) -> float:
        found = _LINE_IN_LOCATION.search(problem.location)
        return int(found.group(1)) if found else float("inf")

    return sorted(problems, key=line)


# -- YAML -------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """YAML 1.1 without timestamps: no setting is a date, and an unquoted
    ``api_version: 2023-06-01`` must stay the string it looks like."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _read_yaml(text: str, environ: Mapping[str, str], doc: _Document) -> bool:
    """Fill ``doc`` from ``text``; False when the text is not usable YAML at all."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = exc.problem or exc.context or "cannot parse"
        if exc.context and exc.problem:
            context_line = f" at line {exc.context_mark.line + 1}" if exc.context_mark else ""
            what = f"{exc.problem} ({exc.context}{context_line})"
        doc.problems.append(ConfigProblem(where, f"invalid YAML: {what}"))
        return False
    except yaml.YAMLError as exc:
        doc.problems.append(ConfigProblem("", f"invalid YAML: {exc}"))
        return False
    if root is None:
        return True
    if not isinstance(root, yaml.MappingNode):
        doc.problems.append(
            ConfigProblem(
                f"line {root.start_mark.line + 1}", "the configuration must be a mapping of sections"
            )
        )
        return False
    builder = _Builder(environ, doc)
    data = builder.build(root, ())
    doc.data = data if isinstance(data, dict) else {}
    # Constructor-level errors (a bad timestamp, an unhashable key) are reported but
    # leave no usable document.
    return not builder.fatal


class _Builder:
    """Turns composed YAML nodes into plain data, interpolating strings and noting the
    line of every key. PyYAML's own constructor would lose both."""

    def __init__(self, environ: Mapping[str, str], doc: _Document) -> None:
        self.environ = environ
        self.doc = doc
        self.constructor = _Loader("")
        self.fatal = False
        self.open_nodes: set[int] = set()

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        if isinstance(node, yaml.CollectionNode):
            # An alias may point at its own ancestor; such a value has no finite form.
            if id(node) in self.open_nodes:
                self.fatal = True
                self.doc.problem(path, "recursive YAML alias")
                return None
            self.open_nodes.add(id(node))
            try:
                return self._collection(node, path)
            finally:
                self.open_nodes.discard(id(node))
        value = self._scalar(node, path)
        if isinstance(value, str) and node.tag == "tag:yaml.org,2002:str":
            return self._interpolate(value, path)
        return value

    def _collection(self, node: yaml.CollectionNode, path: KeyPath) -> Any:
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        items = []
        for index, item in enumerate(node.value):
            self.doc.lines[(*path, index)] = item.start_mark.line + 1
            items.append(self.build(item, (*path, index)))
        return items

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[Any, Any]:
        try:
            self.constructor.flatten_mapping(node)  # resolves "<<" merge keys
        except yaml.MarkedYAMLError as exc:
            self._fail(path, exc)
            return {}
        out: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = self._scalar(key_node, path) if isinstance(key_node, yaml.ScalarNode) else None
            line = key_node.start_mark.line + 1
            if not isinstance(key, str | int | float | bool):
                where = f"{_dotted(path)} (line {line})" if path else f"line {line}"
                self.doc.problems.append(ConfigProblem(where, "a key must be a plain scalar"))
                continue
            if key in first_line:
                self.doc.problems.append(
                    ConfigProblem(
                        f"{_dotted((*path, key))} (line {line})",
                        f"duplicate key {key!r} (first at line {first_line[key]})",
                    )
                )
                continue
            first_line[key] = line
            self.doc.lines[(*path, key)] = line
            out[key] = self.build(value_node, (*path, key))
        return out

    def _scalar(self, node: yaml.Node, path: KeyPath) -> Any:
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as exc:
            self._fail(path, exc)
            return None

    def _fail(self, path: KeyPath, exc: yaml.MarkedYAMLError) -> None:
        self.fatal = True
        mark = exc.problem_mark
        line = f" (line {mark.line + 1})" if mark else ""
        self.doc.problems.append(ConfigProblem(f"{_dotted(path)}{line}", f"invalid YAML: {exc.problem}"))

    def _interpolate(self, value: str, path: KeyPath) -> str:
        if "$" not in value:
            return value

        def substitute(match: re.Match[str]) -> str:
            text = match.group(0)
            if text == "$${":
                return "${"
            name = match.group("name")
            if name is None:
                self.doc.problem(
                    path, f"malformed reference {value!r}: write ${{NAME}}, or $${{ for a literal"
                )
                return text
            found = self.environ.get(name)
            default = match.group("default")
            if default is not None:
                return found if found else default
            if found is None:
                self.doc.problem(path, f"environment variable {name} is not set")
                return ""
            return found

        return _REFERENCE.sub(substitute, value)


# -- environment and defaults ---------------------------------------------------------


def _resolve_home(doc: _Document, source: Path | None, environ: Mapping[str, str]) -> None:
    if environ.get("KEEL_HOME"):
        doc.data["home"] = Path(environ["KEEL_HOME"]).expanduser().absolute()
        doc.env_sources[("home",)] = "KEEL_HOME"
        return
    home = doc.data.get("home")
    if home is None:
        doc.data["home"] = Path(DEFAULT_HOME).expanduser()
    elif isinstance(home, str):
        resolved = Path(home).expanduser()
        if not resolved.is_absolute() and source is not None:
            resolved = source.parent / resolved
        doc.data["home"] = resolved.absolute()
    # Anything else is left for validation to report at its line.


def _apply_env_overrides(doc: _Document, environ: Mapping[str, str]) -> None:
    overrides: list[tuple[str, KeyPath, type]] = [
        ("KEEL_DATABASE_URL", ("store", "url"), str),
        ("KEEL_REDIS_URL", ("redis_url",), str),
        ("KEEL_HOST", ("server", "host"), str),
        ("KEEL_PORT", ("server", "port"), int),
        ("KEEL_LOG_BODIES", ("request_log", "bodies"), bool),
        ("KEEL_MAX_BODY_BYTES", ("server", "max_body_bytes"), int),
    ]
    for variable, path, kind in overrides:
        raw = environ.get(variable)
        if not raw:
            continue
        value: object = raw
        if kind is int:
            try:
                value = int(raw.strip())
            except ValueError:
                doc.problems.append(ConfigProblem(f"env {variable}", f"must be an integer, got {raw!r}"))
                continue
        elif kind is bool:
            lowered = raw.strip().lower()
            if lowered not in ("true", "false", "1", "0"):
                doc.problems.append(ConfigProblem(f"env {variable}", f"must be true/false/1/0, got {raw!r}"))
                continue
            value = lowered in ("true", "1")
        if len(path) == 1:
            doc.data[path[0]] = value
            doc.env_sources[path] = variable
            continue
        section = doc.data.get(path[0])
        if section is None:
            section = doc.data[path[0]] = {}
        if isinstance(section, dict):
            section[path[1]] = value
            doc.env_sources[path] = variable
        # A section that is not a mapping is reported by validation at its own line.


def _add_embedded_defaults(data: dict[Any, Any]) -> None:
    if "providers" not in data:
        data["providers"] = {DEFAULT_PROVIDER: {"type": "local"}}
    if "models" not in data:
        providers = data["providers"]
        if isinstance(providers, dict) and DEFAULT_PROVIDER not in providers:
            providers[DEFAULT_PROVIDER] = {"type": "local"}
        data["models"] = {
            DEMO_CHAT_MODEL: {
                "mode": "chat",
                "deployments": [{"provider": DEFAULT_PROVIDER, "model": DEMO_CHAT_MODEL}],
            },
            DEMO_EMBEDDING_MODEL: {
                "mode": "embedding",
                "deployments": [{"provider": DEFAULT_PROVIDER, "model": DEMO_EMBEDDING_MODEL}],
            },
        }


# -- cross-references -----------------------------------------------------------------


def _check_references(doc: _Document) -> None:
    """Problems that span sections, each at its own location. Written against raw data
    so that they are found alongside field errors; malformed shapes are skipped here
    because validation reports them."""
    providers = doc.data.get("providers")
    models = doc.data.get("models")
    known_providers = set(providers) if isinstance(providers, dict) else set()
    if not isinstance(models, dict):
        return
    routes = {name: route for name, route in models.items() if isinstance(route, dict)}
    guards = doc.data.get("guards")
    policies = guards.get("policies") if isinstance(guards, dict) else None
    known_policies = set(policies) if isinstance(policies, dict) else set()
    fallback_edges: dict[Any, list[Any]] = {}
    for route_name, route in routes.items():
        policy = route.get("guard_policy")
        if isinstance(policy, str) and policy not in known_policies:
            doc.problem(
                ("models", route_name, "guard_policy"),
                f"unknown guard policy {policy!r}{_known(known_policies)}",
            )
        deployments = route.get("deployments")
        for index, dep in enumerate(deployments if isinstance(deployments, list) else []):
            provider = dep.get("provider") if isinstance(dep, dict) else None
            if isinstance(provider, str) and isinstance(providers, dict) and provider not in known_providers:
                doc.problem(
                    ("models", route_name, "deployments", index, "provider"),
                    f"unknown provider {provider!r}{_known(known_providers)}",
                )
        fallbacks = route.get("fallbacks")
        fallback_edges[route_name] = []
        for index, target in enumerate(fallbacks if isinstance(fallbacks, list) else []):
            where = ("models", route_name, "fallbacks", index)
            if not isinstance(target, str):
                continue
            if target == route_name:
                doc.problem(where, f"model {route_name!r} falls back to itself")
            elif target not in models:
                doc.problem(where, f"unknown model {target!r}{_known(set(models))}")
            else:
                fallback_edges[route_name].append(target)
                mode, target_mode = route.get("mode", "chat"), routes.get(target, {}).get("mode", "chat")
                if mode != target_mode:
                    doc.problem(
                        where, f"fallback {target!r} serves {target_mode!r}, this model serves {mode!r}"
                    )
    _check_fallback_cycles(doc, fallback_edges)
    _check_deployment_names(doc, routes)


def _check_fallback_cycles(doc: _Document, edges: dict[Any, list[Any]]) -> None:
    """Report each cycle once (one per back edge of a depth-first walk in file order),
    told from its first-declared model."""
    order = {name: position for position, name in enumerate(edges)}
    done: set[Any] = set()
    reported: set[tuple[Any, ...]] = set()

    def visit(node: Any, trail: list[Any]) -> None:
        for target in edges.get(node, []):
            if target in trail:
                cycle = trail[trail.index(target) :]
                start = min(range(len(cycle)), key=lambda i: order[cycle[i]])
                canonical = tuple(cycle[start:] + cycle[:start])
                if canonical in reported:
                    continue
                reported.add(canonical)
                head, after_head = canonical[0], canonical[1 % len(canonical)]
                shown = " -> ".join(str(name) for name in (*canonical, head))
                index = edges[head].index(after_head)
                doc.problem(("models", head, "fallbacks", index), f"fallback cycle: {shown}")
            elif target not in done:
                visit(target, [*trail, target])
        done.add(node)

    for name in edges:
        if name not in done:
            visit(name, [name])


def _check_deployment_names(doc: _Document, routes: dict[Any, dict[Any, Any]]) -> None:
    explicit: dict[str, KeyPath] = {}
    default_names: dict[str, KeyPath] = {}
    for route_name, route in routes.items():
        deployments = route.get("deployments")
        seen_in_route: dict[str, int] = {}
        for index, dep in enumerate(deployments if isinstance(deployments, list) else []):
            if not isinstance(dep, dict):
                continue
            path: KeyPath = ("models", route_name, "deployments", index)
            default = f"{dep.get('provider')}/{dep.get('model')}"
            name = dep.get("name", default)
            if not isinstance(name, str):
                continue
            if name == default:
                default_names.setdefault(name, path)
            else:
                if name in explicit:
                    used = doc.locate(explicit[name])
                    doc.problem((*path, "name"), f"deployment name {name!r} is already used at {used}")
                explicit.setdefault(name, path)
            if name in seen_in_route:
                doc.problem(
                    path,
                    f"deployment {name!r} appears twice in model {route_name!r} "
                    f"(also deployments[{seen_in_route[name]}]); give one a distinct name",
                )
            seen_in_route.setdefault(name, index)
    for name, path in explicit.items():
        other = default_names.get(name)
        # Within one route the duplicate was reported above.
        if other is not None and other[:2] != path[:2]:
            doc.problem(
                (*path, "name"), f"deployment name {name!r} is the default name of {doc.locate(other)}"
            )


def _known(names: set[Any]) -> str:
    return f" (known: {', '.join(sorted(map(str, names)))})" if names else " (none are configured)"


# -- validation -----------------------------------------------------------------------


def _validate(doc: _Document) -> KeelSettings | None:
    references_reported = bool(doc.problems)
    try:
        return KeelSettings.model_validate(doc.data)
    except ValidationError as exc:
        for error in exc.errors():
            path = tuple(part for part in error["loc"] if part != "[key]")
            # The model-level reference check repeats what _check_references located.
            if not path and references_reported:
                continue
            doc.problem(path, _message(error, path))
    return None


def _message(error: Mapping[str, Any], path: KeyPath) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        key = path[-1]
        allowed = _allowed_keys(path[:-1])
        close = difflib.get_close_matches(str(key), allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (allowed: {', '.join(allowed)})"
        return f"unknown key {key!r}{hint}"
    if kind == "missing":
        return f"missing required key {path[-1]!r}" if path else "missing required key"
    message: str = error["msg"]
    return message[0].lower() + message[1:] if message else kind


def _allowed_keys(path: KeyPath) -> list[str]:
    """Field names of the settings model found at ``path`` (for typo hints)."""
    annotation: Any = KeelSettings
    for part in path:
        annotation = _strip_optional(annotation)
        args = typing.get_args(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field_info = annotation.model_fields.get(str(part))
            if field_info is None:
                return []
            annotation = field_info.annotation
        elif typing.get_origin(annotation) in (list, tuple) and args:
            annotation = args[0]
        elif typing.get_origin(annotation) is dict and len(args) == 2:
            annotation = args[1]
        else:
            return []
    annotation = _strip_optional(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        # ``source`` is filled in by the loader, never written in a file.
        return [name for name in annotation.model_fields if name != "source"]
    return []


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        present = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(present) == 1:
            return present[0]
    return annotation


def _dotted(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
