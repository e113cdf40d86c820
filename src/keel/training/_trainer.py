"""Building the TRL trainer of a run: model and tokenizer, ``SFTConfig``/``DPOConfig``,
the optional LoRA adapter, and saving the trained model (LoRA merged) at the end.

Checked against TRL 1.x: both configs derive from transformers' ``TrainingArguments``
with TRL's own defaults (bf16 on, gradient checkpointing on, DPO's learning rate 1e-6),
so every one of those is set here explicitly rather than inherited.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from keel.core import InvalidRequest
from keel.training._base_model import import_training
from keel.training._config import TrainConfig
from keel.training._data import TrainingData


def load_model(model_dir: Path, bf16: bool, device: str) -> tuple[Any, Any]:
    """The base model and its tokenizer. On a GPU with bf16 the weights load in bf16
    (half the memory); on a CPU in float32, where bf16 matmuls are slow."""
    torch, transformers = import_training("torch", "transformers")
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    if tokenizer.pad_token is None:
        # Padding positions are masked out: any token serves; end-of-sequence is the usual.
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        raise InvalidRequest(f"base model {model_dir}: its tokenizer has no chat template for conversations")
    dtype = torch.bfloat16 if bf16 and device == "cuda" else torch.float32
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True, dtype=dtype)
    return model, tokenizer


def trainer_args(config: TrainConfig, output_dir: Path, device: str, bf16: bool, has_eval: bool) -> Any:
    """The run's ``SFTConfig`` or ``DPOConfig``."""
    (trl,) = import_training("trl")
    evaluate = has_eval and config.eval_steps is not None
    common: dict[str, Any] = {
        "output_dir": str(output_dir),
        "max_steps": config.max_steps if config.max_steps is not None else -1,
        "num_train_epochs": config.epochs,
        "per_device_train_batch_size": config.batch_size,
        "per_device_eval_batch_size": config.eval_batch_size or config.batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation,
        "learning_rate": config.effective_learning_rate,
        "warmup_steps": config.warmup_steps,
        "logging_steps": config.logging_steps,
        "logging_first_step": True,
        "save_strategy": "steps",
        "save_steps": config.save_steps,
        "save_total_limit": config.save_total_limit,
        "eval_strategy": "steps" if evaluate else "no",
        "eval_steps": config.eval_steps if evaluate else None,
        "seed": config.seed,
        "bf16": bf16,
        "fp16": False,
        "use_cpu": device == "cpu",
        "gradient_checkpointing": config.gradient_checkpointing,
        "max_length": config.max_length,
        # Keel logs to MLflow itself (one client, no global state) and draws its own bar.
        "report_to": "none",
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "dataloader_pin_memory": device == "cuda",
    }
    config_type = trl.DPOConfig if config.kind == "dpo" else trl.SFTConfig
    if "activation_checkpointing" in {f.name for f in dataclasses.fields(config_type)}:
        # transformers 5.2x renamed it; the old name still works but warns.
        common["activation_checkpointing"] = common.pop("gradient_checkpointing")
    if config.kind == "dpo":
        return config_type(beta=config.beta, **common)
    return config_type(packing=False, **common)


def lora_config(config: TrainConfig) -> Any:
    if config.lora is None:
        return None
    (peft,) = import_training("peft")
    targets = config.lora.target_modules
    return peft.LoraConfig(
        r=config.lora.r,
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        target_modules=targets if isinstance(targets, str) else list(targets),
        task_type="CAUSAL_LM",
    )


def build_trainer(
    config: TrainConfig,
    data: TrainingData,
    model: Any,
    tokenizer: Any,
    args: Any,
    callbacks: Sequence[Any],
) -> Any:
    trl, datasets, transformers = import_training("trl", "datasets", "transformers")
    train = datasets.Dataset.from_list(data.train)
    evals = datasets.Dataset.from_list(data.eval) if data.eval else None
    trainer_type = trl.DPOTrainer if config.kind == "dpo" else trl.SFTTrainer
    trainer = trainer_type(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=evals,
        processing_class=tokenizer,
        callbacks=list(callbacks),
        peft_config=lora_config(config),
    )
    # disable_tqdm makes the Trainer print every log dict instead: the bar shows them.
    trainer.remove_callback(transformers.trainer_callback.PrinterCallback)
    return trainer


def save_trained_model(trainer: Any, tokenizer: Any, model_dir: Path, merge_lora: bool) -> None:
    """The trained model as a plain Hugging Face directory: a LoRA adapter is merged
    into the base weights, so anything that loads the base model loads this one."""
    if not merge_lora:
        trainer.save_model(str(model_dir))
        if trainer.is_world_process_zero():
            tokenizer.save_pretrained(model_dir)
        return
    if not trainer.is_world_process_zero():
        return
    model = trainer.accelerator.unwrap_model(trainer.model)
    merged = model.merge_and_unload()
    merged.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
