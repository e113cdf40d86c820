"""The model registry: MLflow's, with Keel's lineage tags and aliases.

A version's ``source`` is the trained model's local directory (a local store on one
machine: nothing is copied), or, with ``copy=True``, the run's ``model`` artifact
(``runs:/<run>/model``: what a shared tracking server needs, since other machines cannot
read this one's disk). ``model_path`` gives a local directory either way, downloading
an artifact once into a cache. Aliases (``production``, ``candidate`` ...) are MLflow's
own, so the MLflow UI shows and moves the same ones.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from keel.core import InvalidRequest, NotFound
from keel.training._tracking import mlflow_client, mlflow_errors

# Lineage tags on every version Keel registers (and on the training run).
TAG_KIND = "keel.kind"
TAG_BASE_MODEL = "keel.base_model"
TAG_DATASET = "keel.dataset"
TAG_DATASET_HASH = "keel.dataset_hash"
TAG_TRAINING_RUN = "keel.training_run_id"
TAG_OUTPUT_DIR = "keel.output_dir"

_ALIAS_OK = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


@dataclass(frozen=True)
class ModelRef:
    """One registered model version. ``path`` is its local directory, None when the
    version lives in a remote artifact store (``model_path`` downloads it)."""

    name: str
    version: int
    path: Path | None
    run_id: str | None
    source: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    created_at: datetime | None = None
    description: str = ""

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


@dataclass(frozen=True)
class RegisteredModel:
    """A registered model: its aliases (alias → version) and newest version."""

    name: str
    latest_version: int | None
    aliases: Mapping[str, int]
    description: str
    updated_at: datetime | None


def register_model(
    path: Path,
    name: str,
    *,
    tracking_uri: str,
    run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
    aliases: Sequence[str] = (),
    description: str | None = None,
    copy: bool = False,
) -> ModelRef:
    """Register the Hugging Face model directory ``path`` as a new version of ``name``
    (created when missing), with ``tags`` and ``aliases``; ``run_id`` links the
    version to the run that made it. ``copy`` uploads the directory as the run's
    ``model`` artifact (needs ``run_id``) and registers that instead of the path."""
    path = Path(path).expanduser().resolve()
    if not (path / "config.json").is_file():
        raise NotFound(f"no Hugging Face model directory at {path} (no config.json)")
    if not name.strip():
        raise InvalidRequest("a registered model needs a name")
    for alias in aliases:
        _check_alias(alias)
    client = mlflow_client(tracking_uri)
    with mlflow_errors(tracking_uri):
        source = str(path)
        if copy:
            if run_id is None:
                raise InvalidRequest("copying a model into MLflow needs the run it belongs to")
            client.log_artifacts(run_id, str(path), "model")
            source = f"runs:/{run_id}/model"
        with _missing() as missing:
            client.get_registered_model(name)
        if missing:
            with contextlib.suppress(Exception):  # created meanwhile by someone else: fine
                client.create_registered_model(name)
        version = client.create_model_version(
            name, source, run_id=run_id, tags=dict(tags or {}), description=description
        )
        for alias in aliases:
            client.set_registered_model_alias(name, alias, version.version)
        return _ref(client.get_model_version(name, version.version))


def resolve_model(name: str, alias_or_version: str | int, *, tracking_uri: str) -> ModelRef:
    """The version of ``name`` that an alias (``production``), a number (``3``, ``v3``)
    or ``latest`` names; NotFound when there is none."""
    client = mlflow_client(tracking_uri)
    wanted = str(alias_or_version).strip()
    with mlflow_errors(tracking_uri):
        if wanted == "latest":
            versions = list_versions(name, tracking_uri=tracking_uri)
            if not versions:
                raise NotFound(f"model {name!r} has no versions")
            return versions[0]
        number = wanted.removeprefix("v")
        with _missing() as missing:
            if number.isdigit():
                found = client.get_model_version(name, number)
            else:
                found = client.get_model_version_by_alias(name, wanted)
        if missing:
            what = f"version {number}" if number.isdigit() else f"alias {wanted!r}"
            raise NotFound(f"model {name!r} has no {what}")
        return _ref(found)


def set_alias(name: str, alias: str, version: int | str, *, tracking_uri: str) -> None:
    """Point ``alias`` of ``name`` at ``version`` (moving it from any other)."""
    _check_alias(alias)
    ref = resolve_model(name, version, tracking_uri=tracking_uri)
    client = mlflow_client(tracking_uri)
    with mlflow_errors(tracking_uri):
        client.set_registered_model_alias(name, alias, str(ref.version))


def delete_alias(name: str, alias: str, *, tracking_uri: str) -> None:
    client = mlflow_client(tracking_uri)
    with mlflow_errors(tracking_uri), _missing() as missing:
        client.delete_registered_model_alias(name, alias)
    if missing:
        raise NotFound(f"model {name!r} has no alias {alias!r}")


def list_models(*, tracking_uri: str) -> list[RegisteredModel]:
    """Every registered model, by name."""
    client = mlflow_client(tracking_uri)
    models = []
    with mlflow_errors(tracking_uri):
        token = None
        while True:
            page = client.search_registered_models(max_results=200, page_token=token)
            for model in page:
                latest = [int(v.version) for v in model.latest_versions or ()]
                models.append(
                    RegisteredModel(
                        name=model.name,
                        latest_version=max(latest) if latest else None,
                        aliases={alias: int(v) for alias, v in (model.aliases or {}).items()},
                        description=model.description or "",
                        updated_at=_time(model.last_updated_timestamp),
                    )
                )
            token = page.token
            if not token:
                break
    return sorted(models, key=lambda m: m.name)


def list_versions(name: str, *, tracking_uri: str) -> list[ModelRef]:
    """The versions of ``name``, newest first; NotFound for an unknown model."""
    client = mlflow_client(tracking_uri)
    with mlflow_errors(tracking_uri):
        model = None
        with _missing():
            model = client.get_registered_model(name)
        if model is None:
            raise NotFound(f"no registered model {name!r}")
        escaped = name.replace("'", "\\'")
        versions = client.search_model_versions(f"name='{escaped}'", max_results=10000)
    # Searched versions come without their aliases: the registered model has them.
    by_version: dict[int, list[str]] = {}
    for alias, version in (model.aliases or {}).items():
        by_version.setdefault(int(version), []).append(alias)
    refs = [_ref(v, by_version.get(int(v.version), ())) for v in versions]
    return sorted(refs, key=lambda r: r.version, reverse=True)


def model_path(ref: ModelRef, *, tracking_uri: str | None = None, cache_dir: Path | None = None) -> Path:
    """A local directory holding ``ref``'s model, one a ``local`` provider deployment
    can load. A remote version is downloaded once into ``cache_dir`` (default
    ``~/.cache/keel/models``)."""
    if ref.path is not None:
        if not (ref.path / "config.json").is_file():
            raise NotFound(f"{ref}: its model directory {ref.path} is gone")
        return ref.path
    if tracking_uri is None:
        raise InvalidRequest(f"{ref} lives in MLflow's artifact store: give the tracking URI to fetch it")
    root = Path(cache_dir) if cache_dir is not None else Path.home() / ".cache" / "keel" / "models"
    target = root / _safe(ref.name) / str(ref.version)
    if (target / "config.json").is_file():
        return target
    try:
        from mlflow.artifacts import download_artifacts
    except ImportError:  # pragma: no cover - mlflow_client below says what to install
        mlflow_client(tracking_uri)
        raise
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{ref.version}.partial"
    with mlflow_errors(tracking_uri):
        downloaded = Path(
            download_artifacts(artifact_uri=ref.source, dst_path=str(staging), tracking_uri=tracking_uri)
        )
    # download_artifacts nests the artifact's own folder name under dst_path.
    downloaded.rename(target)
    return target


def _ref(version: Any, aliases: Sequence[str] | None = None) -> ModelRef:
    source = str(version.source or "")
    return ModelRef(
        name=version.name,
        version=int(version.version),
        path=_local_path(source),
        run_id=version.run_id or None,
        source=source,
        tags=dict(version.tags or {}),
        aliases=tuple(sorted(aliases if aliases is not None else version.aliases or ())),
        created_at=_time(version.creation_timestamp),
        description=version.description or "",
    )


def _local_path(source: str) -> Path | None:
    if source.startswith("/"):
        return Path(source)
    parsed = urlparse(source)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    return None


def _time(millis: int | None) -> datetime | None:
    return datetime.fromtimestamp(millis / 1000, UTC) if millis else None


def _check_alias(alias: str) -> None:
    # MLflow reserves ``latest`` and ``vN`` (they already mean a version).
    if not _ALIAS_OK.match(alias) or alias.lower() == "latest" or re.fullmatch(r"[vV]\d+", alias):
        raise InvalidRequest(f"bad alias {alias!r}: letters, digits, _ and -; not latest or vN")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "_"


class _Missing:
    def __init__(self) -> None:
        self.value = False

    def __bool__(self) -> bool:
        return self.value


@contextlib.contextmanager
def _missing() -> Iterator[_Missing]:
    """Swallows MLflow's "does not exist" and says it happened."""
    from mlflow.exceptions import MlflowException

    flag = _Missing()
    try:
        yield flag
    except MlflowException as exc:
        code = getattr(exc, "error_code", "")
        # A missing alias is INVALID_PARAMETER_VALUE "... alias X not found" (MLflow 3).
        if code not in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND") and "not found" not in str(exc.message):
            raise
        flag.value = True
