"""The base model of a run: which directory, on which device, in which precision; and
the optional dependencies a run needs, imported on demand."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from keel.core import DEMO_CHAT_MODEL, InvalidRequest, MissingPrerequisite, NotFound
from keel.providers import ensure_demo_model

DEMO_NAMES = ("demo", DEMO_CHAT_MODEL)
_INSTALL = "pip install 'keel[train]'"


def import_training(*names: str) -> list[ModuleType]:
    """The named modules (torch, transformers, trl, datasets, peft, accelerate), or
    MissingPrerequisite saying how to install them."""
    modules = []
    for name in names:
        try:
            modules.append(importlib.import_module(name))
        except ImportError as exc:
            raise MissingPrerequisite(f"training needs {exc.name or name}: {_INSTALL}") from exc
    return modules


def check_base_model(base_model: str) -> Path | None:
    """The directory ``base_model`` names, checked without loading anything; None for
    the demo model (built later, when missing)."""
    if base_model in DEMO_NAMES:
        return None
    path = Path(base_model).expanduser()
    if not path.exists():
        hint = ""
        if "/" in base_model and not base_model.startswith(("/", ".", "~")):
            hint = " (Hub ids are not downloaded: fetch the model first and pass its directory)"
        raise NotFound(f"base model {base_model}: no such directory{hint}")
    if not (path / "config.json").is_file():
        raise InvalidRequest(f"base model {path} is not a Hugging Face model directory (no config.json)")
    return path.resolve()


def resolve_base_model(base_model: str, home: Path) -> Path:
    """The base model's directory; builds the demo model into ``home`` when needed."""
    checked = check_base_model(base_model)
    return checked if checked is not None else ensure_demo_model(Path(home))


def pick_device(device: str, bf16: bool | None, torch: ModuleType) -> tuple[str, bool]:
    """``(cuda|cpu, bf16)``: CUDA when asked for or (``auto``) present; bf16 when asked
    for or, by default, when the GPU supports it (Ampere and newer)."""
    has_cuda = bool(torch.cuda.is_available())
    if device == "cuda" and not has_cuda:
        build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
        raise MissingPrerequisite(f"--device cuda: no CUDA device (torch {torch.__version__}, {build})")
    chosen = "cuda" if device == "cuda" or (device == "auto" and has_cuda) else "cpu"
    supported = chosen == "cuda" and bool(torch.cuda.is_bf16_supported())
    if bf16 is None:
        return chosen, supported
    if bf16 and chosen == "cuda" and not supported:
        raise MissingPrerequisite("--bf16: this GPU does not support bfloat16 (use --no-bf16)")
    return chosen, bf16
