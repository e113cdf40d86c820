"""TrainConfig and LoraSpec: parsing, validation, the JSON that accelerate's processes read."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.core import ConfigError
from keel.training import LoraSpec, TrainConfig, resolve_paths


def test_lora_spec_parses_keys_and_refuses_nonsense() -> None:
    assert LoraSpec.parse("r=16,alpha=32") == LoraSpec(r=16, alpha=32)
    assert LoraSpec.parse("default") == LoraSpec()
    spec = LoraSpec.parse("r=4, dropout=0, targets=q_proj+v_proj")
    assert spec.target_modules == ("q_proj", "v_proj")
    assert spec.dropout == 0
    assert str(spec) == "r=4,alpha=16,dropout=0.0,targets=q_proj+v_proj"
    for bad, where in (("r=0", "lora.r"), ("rank=x", "lora"), ("beta=2", "lora"), ("r", "lora")):
        with pytest.raises(ConfigError) as caught:
            LoraSpec.parse(bad)
        assert caught.value.problems[0].location == where


def test_config_rejects_bad_values_naming_each() -> None:
    with pytest.raises(ConfigError) as caught:
        TrainConfig(kind="ppo", base_model="demo", dataset=Path("d"), home=Path("h"), batch_size=0, beta=0)  # type: ignore[arg-type]
    locations = {p.location for p in caught.value.problems}
    assert locations == {"kind", "batch_size", "beta"}


def test_default_learning_rate_depends_on_kind_and_lora() -> None:
    base = TrainConfig(kind="dpo", base_model="demo", dataset=Path("d"), home=Path("h"))
    assert base.effective_learning_rate == 5e-6
    assert (
        TrainConfig(kind="sft", base_model="demo", dataset=Path("d"), home=Path("h")).effective_learning_rate
        == 2e-5
    )
    with_lora = TrainConfig(kind="dpo", base_model="demo", dataset=Path("d"), home=Path("h"), lora=LoraSpec())
    assert with_lora.effective_learning_rate == 5e-5
    assert (
        TrainConfig(
            kind="dpo", base_model="demo", dataset=Path("d"), home=Path("h"), learning_rate=1e-3
        ).effective_learning_rate
        == 1e-3
    )


def test_json_round_trip_and_resolved_paths(tmp_path: Path) -> None:
    config = resolve_paths(
        TrainConfig(
            kind="dpo",
            base_model="demo",
            dataset=Path("data"),
            home=tmp_path,
            lora=LoraSpec(r=4, target_modules=("q_proj", "v_proj")),
            aliases=("candidate",),
            max_steps=7,
        )
    )
    assert config.run_name is not None and config.run_name.startswith("dpo-keel-demo-")
    assert config.output_dir == tmp_path / "training" / config.run_name
    assert config.dataset.is_absolute()
    assert TrainConfig.from_json(config.to_json()) == config
    with pytest.raises(ConfigError) as caught:
        TrainConfig.from_json('{"kind": "dpo", "warp_speed": 9}', "run.json")
    assert caught.value.problems[0].location == "warp_speed"
    assert caught.value.source == "run.json"
