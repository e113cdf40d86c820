"""``python``: a scorer written as a Python function by the suite's author.

``function`` is ``package.module:fn`` (importable) or ``path/to/file.py:fn`` (a path
relative to ``base_dir``, the suite's directory, which the suite loader passes). The
function is called as ``fn(case, output)`` (or ``fn(case, output, context)`` when it
takes a third argument), may be ``async``, and returns a bool (pass/fail), a number, a
``Score``, or ``(value, explanation)``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from keel.core import InvalidRequest, SettingError
from keel.evals._scorer import BaseScorer, one_line, scorer
from keel.evals._types import Case, Output, Score, ScoreContext


def load_function(spec: str, base_dir: str | None = None) -> Callable[..., Any]:
    """The function named by ``module:fn`` or ``file.py:fn``; ``ValueError`` saying
    what is wrong otherwise. A dotted name that does not import is also looked for as a
    file under ``base_dir`` (``my_scorers:fn`` beside the suite)."""
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name:
        raise ValueError(f"expected 'package.module:function' or 'path/to/file.py:function', got {spec!r}")
    if target.endswith(".py") or "/" in target or "\\" in target:
        module = _load_file(target, base_dir)
    else:
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as exc:
            beside = Path(base_dir or ".") / (target.replace(".", "/") + ".py")
            if base_dir is None or not beside.is_file():
                raise ValueError(f"cannot import {target!r}: {exc}") from None
            module = _load_file(str(beside), None)
        except Exception as exc:
            raise ValueError(f"importing {target!r} failed: {type(exc).__name__}: {exc}") from None
    fn = getattr(module, name, None)
    if fn is None:
        raise ValueError(f"{target!r} has no {name!r}")
    if not callable(fn):
        raise ValueError(f"{spec!r} is not a function")
    return fn  # type: ignore[no-any-return]


def _load_file(target: str, base_dir: str | None) -> ModuleType:
    path = Path(target).expanduser()
    if not path.is_absolute():
        path = Path(base_dir or ".") / path
    path = path.resolve()
    if not path.is_file():
        raise ValueError(f"no file {str(path)!r}")
    # One module per file, named after its path, so two suites' scorers.py do not
    # replace each other in sys.modules.
    module_name = f"keel_eval_scorers_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}_{path.stem}"
    module = sys.modules.get(module_name)
    if module is not None:
        return module
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise ValueError(f"cannot load {str(path)!r} as Python")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module
    try:
        loader_spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise ValueError(f"importing {str(path)!r} failed: {type(exc).__name__}: {exc}") from None
    return module


def _takes_context(fn: Callable[..., Any]) -> bool:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 3


class PythonScorer(BaseScorer):
    def __init__(self, fn: Callable[..., Any], spec: str, binary: bool, threshold: float | None) -> None:
        super().__init__(binary=binary or threshold is not None)
        self.fn = fn
        self.spec = spec
        self.threshold = threshold
        self.with_context = _takes_context(fn)

    async def evaluate(self, case: Case, output: Output, context: ScoreContext) -> Score:
        try:
            result = self.fn(case, output, context) if self.with_context else self.fn(case, output)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            raise self.case_error(
                case, f"made {self.spec} raise {type(exc).__name__}: {one_line(str(exc))}"
            ) from exc
        return self._to_score(case, result)

    def _to_score(self, case: Case, result: Any) -> Score:
        if isinstance(result, Score):
            return result
        explanation = ""
        if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], str):
            result, explanation = result
        if isinstance(result, bool):
            return self.verdict(result, explanation or ("passed" if result else "failed") + f" ({self.spec})")
        if isinstance(result, int | float):
            return self.graded(
                float(result), self.threshold, explanation or f"{float(result):.3g} ({self.spec})"
            )
        raise InvalidRequest(
            f"{self.spec} returned {type(result).__name__} for case {case.id!r}; "
            "expected a bool, a number, a Score or (value, explanation)"
        )


@scorer("python")
def python(
    function: str, base_dir: str | None = None, binary: bool = False, threshold: float | None = None
) -> PythonScorer:
    """A Python function scores each output (see the module's docstring). ``binary``:
    its values are pass/fail (compared with McNemar's test); ``threshold`` turns a
    number into pass/fail."""
    try:
        fn = load_function(function, base_dir)
    except ValueError as exc:
        raise SettingError("function", str(exc)) from None
    return PythonScorer(fn, function, binary, threshold)
