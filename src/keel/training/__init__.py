"""Fine-tuning (SFT, DPO) with transformers + TRL (+ PEFT LoRA), tracked in MLflow, and
MLflow's model registry with Keel's lineage tags and aliases.

Nothing heavy is imported here: torch, transformers, TRL and MLflow load when a run
starts or the registry is first used.
"""

from keel.training._base_model import resolve_base_model
from keel.training._config import LoraSpec, TrainConfig, TrainKind, TrainResult
from keel.training._data import TrainingData, dataset_hash, load_training_data
from keel.training._registry import (
    TAG_BASE_MODEL,
    TAG_DATASET,
    TAG_DATASET_HASH,
    TAG_KIND,
    TAG_OUTPUT_DIR,
    TAG_TRAINING_RUN,
    ModelRef,
    RegisteredModel,
    delete_alias,
    list_models,
    list_versions,
    model_path,
    register_model,
    resolve_model,
    set_alias,
)
from keel.training._run import resolve_paths, run_training, train_dpo, train_sft
from keel.training._tracking import default_tracking_uri

__all__ = [
    "TAG_BASE_MODEL",
    "TAG_DATASET",
    "TAG_DATASET_HASH",
    "TAG_KIND",
    "TAG_OUTPUT_DIR",
    "TAG_TRAINING_RUN",
    "LoraSpec",
    "ModelRef",
    "RegisteredModel",
    "TrainConfig",
    "TrainKind",
    "TrainResult",
    "TrainingData",
    "dataset_hash",
    "default_tracking_uri",
    "delete_alias",
    "list_models",
    "list_versions",
    "load_training_data",
    "model_path",
    "register_model",
    "resolve_base_model",
    "resolve_model",
    "resolve_paths",
    "run_training",
    "set_alias",
    "train_dpo",
    "train_sft",
]
