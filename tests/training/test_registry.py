"""The model registry on a local ``sqlite:///`` MLflow store (what Keel uses by default
and what works with ``mlflow-skinny``): versions, lineage tags, aliases, local paths,
a copied artifact downloaded back; and ``keel models``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from keel.core import InvalidRequest, NotFound
from keel.training import (
    default_tracking_uri,
    delete_alias,
    list_models,
    list_versions,
    model_path,
    register_model,
    resolve_model,
    set_alias,
)
from tests.training.conftest import fake_model_dir

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
mlflow = pytest.importorskip("mlflow")


def test_versions_aliases_and_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # MLflow's own default would write ./mlruns here: prove it does not
    uri = default_tracking_uri(tmp_path / "home")
    (tmp_path / "home").mkdir()
    base = fake_model_dir(tmp_path / "base", "base")
    tuned = fake_model_dir(tmp_path / "tuned", "tuned")

    v1 = register_model(base, "support", tracking_uri=uri, tags={"keel.kind": "base"}, aliases=["production"])
    v2 = register_model(tuned, "support", tracking_uri=uri, tags={"keel.kind": "dpo"}, aliases=["candidate"])
    assert (v1.version, v2.version) == (1, 2)
    assert v1.path == base.resolve() and v1.aliases == ("production",)

    assert resolve_model("support", "production", tracking_uri=uri).version == 1
    assert resolve_model("support", "candidate", tracking_uri=uri).tags["keel.kind"] == "dpo"
    assert resolve_model("support", "latest", tracking_uri=uri).version == 2
    assert resolve_model("support", "v1", tracking_uri=uri).path == base.resolve()
    assert model_path(resolve_model("support", 2, tracking_uri=uri)) == tuned.resolve()

    # Promotion moves the alias; the old version keeps none.
    set_alias("support", "production", 2, tracking_uri=uri)
    assert resolve_model("support", "production", tracking_uri=uri).version == 2
    assert resolve_model("support", 1, tracking_uri=uri).aliases == ()
    delete_alias("support", "candidate", tracking_uri=uri)
    with pytest.raises(NotFound, match="no alias 'candidate'"):
        resolve_model("support", "candidate", tracking_uri=uri)
    with pytest.raises(NotFound, match="no version 9"):
        resolve_model("support", 9, tracking_uri=uri)
    with pytest.raises(NotFound, match="no registered model 'nobody'"):
        list_versions("nobody", tracking_uri=uri)
    with pytest.raises(InvalidRequest, match="bad alias"):
        set_alias("support", "v3", 1, tracking_uri=uri)
    with pytest.raises(NotFound, match="no Hugging Face model directory"):
        register_model(tmp_path, "support", tracking_uri=uri)

    [model] = list_models(tracking_uri=uri)
    assert (model.name, model.latest_version, dict(model.aliases)) == ("support", 2, {"production": 2})
    assert [v.version for v in list_versions("support", tracking_uri=uri)] == [2, 1]
    assert not (tmp_path / "mlruns").exists()

    # A directory that went away is reported, not handed to a deployment.
    (tuned / "config.json").unlink()
    with pytest.raises(NotFound, match="is gone"):
        model_path(resolve_model("support", 2, tracking_uri=uri))


def test_copied_model_is_downloaded_from_the_artifact_store(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    uri = default_tracking_uri(tmp_path)
    client = MlflowClient(uri)
    experiment = client.create_experiment("t", artifact_location=(tmp_path / "artifacts").as_uri())
    run_id = client.create_run(experiment).info.run_id
    source = fake_model_dir(tmp_path / "tuned", "copied")
    (source / "weights.bin").write_bytes(b"\x00" * 64)

    ref = register_model(source, "remote", tracking_uri=uri, run_id=run_id, copy=True)
    assert ref.path is None and ref.source == f"runs:/{run_id}/model"
    with pytest.raises(InvalidRequest, match="tracking URI"):
        model_path(ref)
    local = model_path(ref, tracking_uri=uri, cache_dir=tmp_path / "cache")
    assert local == tmp_path / "cache" / "remote" / "1"
    assert json.loads((local / "config.json").read_text())["marker"] == "copied"
    assert (local / "weights.bin").stat().st_size == 64
    # Second call: from the cache.
    assert model_path(ref, tracking_uri=uri, cache_dir=tmp_path / "cache") == local


def test_models_cli(tmp_path: Path, cli_app: typer.Typer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("KEEL_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    base = fake_model_dir(tmp_path / "base")
    runner = CliRunner()

    result = runner.invoke(cli_app, ["models", "list"])
    assert result.exit_code == 0, result.output
    assert "no registered models" in result.output

    result = runner.invoke(
        cli_app, ["models", "register", "support", str(base), "--alias", "production", "--tag", "team=ml"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"registered support version 1 [production]: {base.resolve()}"
    assert (home / "mlflow.db").is_file()  # the default store is in the data directory

    result = runner.invoke(cli_app, ["models", "register", "support", str(base)])
    result = runner.invoke(cli_app, ["models", "alias", "support", "candidate", "2"])
    assert result.output.strip() == "support@candidate → version 2"

    result = runner.invoke(cli_app, ["models", "list", "--json"])
    assert json.loads(result.output) == [
        {
            "name": "support",
            "latest_version": 2,
            "aliases": {"candidate": 2, "production": 1},
            "description": "",
            "updated_at": json.loads(result.output)[0]["updated_at"],
        }
    ]
    result = runner.invoke(cli_app, ["models", "show", "support", "production", "--json"])
    shown = json.loads(result.output)
    assert shown["version"] == 1
    assert shown["tags"] == {"keel.kind": "base", "keel.base_model": str(base.resolve()), "team": "ml"}

    result = runner.invoke(cli_app, ["models", "show", "support"])
    assert result.exit_code == 0 and "v2" in result.output and "candidate" in result.output
    result = runner.invoke(cli_app, ["models", "path", "support", "candidate"])
    assert result.output.strip() == str(base.resolve())

    result = runner.invoke(cli_app, ["models", "show", "support", "staging"])
    assert result.exit_code == 1
    assert result.output.strip() == "error: model 'support' has no alias 'staging'"
    result = runner.invoke(cli_app, ["models", "alias", "support", "candidate", "--delete"])
    assert result.exit_code == 0
    assert "candidate" not in runner.invoke(cli_app, ["models", "show", "support", "2", "--json"]).output
    result = runner.invoke(cli_app, ["models", "register", "support", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "no such directory" in result.output
