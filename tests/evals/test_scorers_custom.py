"""The ``python`` scorer: loading ``module:fn`` and ``file.py:fn`` (relative to
``base_dir``), sync and async functions, every return shape, and its errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from keel.core import ConfigError, InvalidRequest
from keel.evals._scorer import build_scorer
from keel.evals._types import Case, Output, Score, ScoreContext

CASE = Case("c4", {"q": "2+2"}, expected="4", line=5)


def mentions_expected(case: Case, output: Output) -> bool:
    return str(case.expected) in output.text


def length_ratio(case: Case, output: Output) -> float:
    return min(1.0, len(output.text) / 10)


async def async_with_reason(case: Case, output: Output) -> tuple[float, str]:
    return 0.25, "a quarter"


def with_context(case: Case, output: Output, context: ScoreContext) -> Score:
    return Score(1.0, True, f"context model {context.embedding_model}")


def returns_nonsense(case: Case, output: Output) -> Any:
    return {"value": 1}


def raises(case: Case, output: Output) -> bool:
    raise ZeroDivisionError("division by zero")


NOT_CALLABLE = 3

HERE = "tests.evals.test_scorers_custom"


async def run(function: str, text: str = "The answer is 4", **settings: Any) -> Score:
    built = build_scorer("python", {"function": function, **settings}, location="scorers[0].python")
    return await built.score(CASE, Output(text), ScoreContext(embedding_model="mini"))


async def test_module_function_returning_a_bool() -> None:
    assert await run(f"{HERE}:mentions_expected") == Score(1.0, True, f"passed ({HERE}:mentions_expected)")
    failed = await run(f"{HERE}:mentions_expected", "five")
    assert (failed.value, failed.passed) == (0.0, False)


async def test_number_threshold_async_tuple_score_and_context() -> None:
    graded = await run(f"{HERE}:length_ratio", "12345")
    assert (graded.value, graded.passed) == (0.5, None)
    assert (await run(f"{HERE}:length_ratio", "12345", threshold=0.6)).passed is False
    assert await run(f"{HERE}:async_with_reason") == Score(0.25, None, "a quarter")
    assert await run(f"{HERE}:with_context") == Score(1.0, True, "context model mini")


async def test_file_path_relative_to_base_dir(tmp_path: Path) -> None:
    (tmp_path / "scorers").mkdir()
    (tmp_path / "scorers" / "mine.py").write_text(
        "def polite(case, output):\n    return 'please' in output.text.lower(), 'checked politeness'\n"
    )
    score = await run("scorers/mine.py:polite", "Please wait", base_dir=str(tmp_path))
    assert score == Score(1.0, True, "checked politeness")
    built = build_scorer(
        "python",
        {"function": "scorers/mine.py:polite", "base_dir": str(tmp_path), "binary": True},
        location="x",
    )
    assert built.binary is True
    absolute = await run(f"{tmp_path / 'scorers' / 'mine.py'}:polite", "no")
    assert absolute.passed is False
    # A module name that does not import is looked for beside the suite.
    dotted = await run("scorers.mine:polite", "please", base_dir=str(tmp_path))
    assert dotted.passed is True


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("no_colon", "expected 'package.module:function'"),
        ("keel_no_such_module:fn", "cannot import 'keel_no_such_module'"),
        (f"{HERE}:missing", f"'{HERE}' has no 'missing'"),
        (f"{HERE}:NOT_CALLABLE", "is not a function"),
        ("does/not/exist.py:fn", "no file"),
    ],
)
def test_unknown_module_or_function_is_a_config_error(function: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        build_scorer("python", {"function": function}, location="scorers[3].python")
    [problem] = exc.value.problems
    assert problem.location == "scorers[3].python.function"
    assert message in problem.message


def test_a_file_that_fails_to_import_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import keel_no_such_module\n")
    with pytest.raises(ConfigError, match=r"importing .*broken\.py' failed: ModuleNotFoundError"):
        build_scorer("python", {"function": "broken.py:fn", "base_dir": str(tmp_path)}, location="x")


async def test_errors_in_the_function_name_the_case() -> None:
    with pytest.raises(InvalidRequest, match=r"case 'c4' \(line 5\) made .*:raises raise ZeroDivisionError"):
        await run(f"{HERE}:raises")
    with pytest.raises(InvalidRequest, match="returned dict for case 'c4'"):
        await run(f"{HERE}:returns_nonsense")
