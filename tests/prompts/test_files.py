from __future__ import annotations

from pathlib import Path

import pytest

from keel.core import InvalidRequest
from keel.prompts import VersionContent, prompt_file_text, prompt_files, read_prompt_file

from .helpers import make_version

FILE = """\
type: chat
messages:
  - {role: system, content: "You help with {{ product }}."}
  - {role: placeholder, content: "{{ history }}"}
  - {role: user, content: "{{ question }}"}
variables:
  product: {type: string, default: Keel}
  question: string
model_config: {model: gpt-4o-mini, temperature: 0.2}
commit_message: first
"""


def test_a_prompt_file_reads_with_its_name_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "support.yaml"
    path.write_text(FILE)
    spec = read_prompt_file(path)
    assert (spec.name, spec.type, spec.commit_message) == ("support", "chat", "first")
    content = VersionContent.parse(
        "chat", template=spec.template, variables=spec.variables, model_config=spec.model_config
    )
    assert content.model_config == {"model": "gpt-4o-mini", "temperature": 0.2}
    assert [v.name for v in content.variables] == ["product", "question"]


def test_written_files_read_back_to_the_same_content(tmp_path: Path) -> None:
    version = make_version(
        [{"role": "system", "content": "Hi {{ a }}"}, {"role": "placeholder", "content": "{{ history }}"}],
        variables={"a": {"type": "integer", "default": 2}},
        model_config={"model": "m"},
        name="greet",
    )
    path = tmp_path / "out.yaml"
    path.write_text(prompt_file_text(version))
    spec = read_prompt_file(path)
    assert spec.name == "greet" and spec.type == "chat"
    again = VersionContent.parse(
        "chat", template=spec.template, variables=spec.variables, model_config=spec.model_config
    )
    assert again == version.content


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: [unclosed", "invalid YAML at line 1"),
        ("- a\n- b\n", "holds one mapping"),
        ("template: x\ncolour: red\n", "unknown key 'colour'"),
        ("template: x\nmessages: []\n", "not both"),
        ("variables: {}\n", "no 'template'"),
        ("name: 'a b'\ntemplate: x\n", "Invalid prompt name"),
    ],
)
def test_file_errors_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InvalidRequest, match=message) as caught:
        read_prompt_file(path)
    assert str(path) in caught.value.message


def test_folders_list_prompt_files_only(tmp_path: Path) -> None:
    for name in ("b.yaml", "a.json", "c.yml", "notes.txt"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in prompt_files(tmp_path)] == ["a.json", "b.yaml", "c.yml"]
    with pytest.raises(InvalidRequest, match="no such file"):
        prompt_files(tmp_path / "missing")
