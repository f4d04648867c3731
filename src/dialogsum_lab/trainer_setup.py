"""The Trainer of a run: its tokenised data, its arguments, and the loss that makes batches of any split agree."""

import os
from pathlib import Path

import torch
from datasets import Dataset
from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments
from transformers.integrations import is_tensorboard_available

from dialogsum_lab.config import TrainConfig
from dialogsum_lab.data import make_collator
from dialogsum_lab.training_data import encode, select_dialogues, training_set_record


def prepare_datasets(config: TrainConfig, tokenizer) -> tuple[Dataset, Dataset | None, dict]:
    """Tokenised training and evaluation sets (unpadded; the collator pads per batch), and the record of which
    dialogues they hold (`training_set.json`)."""
    train, evaluation = select_dialogues(config)
    record = training_set_record(config, train, evaluation)
    encoded = encode(config, evaluation, tokenizer) if evaluation is not None else None
    return encode(config, train, tokenizer), encoded, record


def training_arguments(config: TrainConfig, checkpoints: Path, has_eval: bool) -> Seq2SeqTrainingArguments:
    """The Seq2SeqTrainingArguments a config means (its device and precision already decided)."""
    return Seq2SeqTrainingArguments(
        output_dir=str(checkpoints),
        per_device_train_batch_size=config.batch_size, per_device_eval_batch_size=config.eval_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate, weight_decay=config.weight_decay,
        num_train_epochs=config.epochs, max_steps=config.max_steps, warmup_steps=config.warmup_ratio,
        lr_scheduler_type=config.lr_scheduler, max_grad_norm=config.max_grad_norm,
        bf16=config.precision == "bf16", use_cpu=config.device == "cpu",
        # transformers' own activation checkpointing, also under FSDP: FSDP's checkpoint wrapper around T5Block
        # recomputes a different number of tensors and stops (seen on an H200, torch 2.11), at the cost of one
        # more weight gather in backward.
        activation_checkpointing=config.gradient_checkpointing,
        fsdp=config.fsdp or None, fsdp_config={"transformer_layer_cls_to_wrap": ["T5Block"]} if config.fsdp else None,
        torch_compile=config.torch_compile,
        # Batches of similar length waste little compute on padding (the old `group_by_length`).
        train_sampling_strategy="group_by_length",
        label_names=["labels"],  # PEFT models hide the signature; without this they report no eval loss
        eval_strategy=config.eval_strategy if has_eval else "no", eval_steps=config.save_steps,
        save_strategy=config.save_strategy, save_steps=config.save_steps, save_total_limit=config.save_total_limit,
        logging_steps=config.logging_steps, logging_first_step=True, seed=config.seed,
        # TensorBoard where a launcher asks for it (a SageMaker job syncs this folder to S3), nothing otherwise.
        report_to=["tensorboard"] if os.environ.get("TENSORBOARD_LOGGING_DIR") and is_tensorboard_available() else [],
        dataloader_num_workers=0, predict_with_generate=False)


def token_mean_loss(outputs, labels: torch.Tensor, num_items_in_batch: torch.Tensor | int | None = None):
    """Cross-entropy summed over target tokens, divided by the target tokens of the whole optimiser step.

    The Trainer counts those tokens over every gradient-accumulation step and
    every process, so the loss and its gradient are the same whether a global
    batch runs at once, in accumulated pieces or spread over GPUs. T5's own
    loss is a mean over its micro-batch, which would weigh a micro-batch of
    short summaries like one of long ones.
    """
    logits = outputs.logits.float()
    labels = labels.to(logits.device)
    total = torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), labels.view(-1), ignore_index=-100,
                                              reduction="sum")
    return total / (num_items_in_batch if num_items_in_batch is not None else labels.ne(-100).sum())


def make_trainer(config: TrainConfig, model, tokenizer, checkpoints: Path) -> Seq2SeqTrainer:
    """The Trainer for `model` on the config's data, checkpointing into `checkpoints`."""
    train_set, eval_set, record = prepare_datasets(config, tokenizer)
    cuda = config.device.startswith("cuda")
    trainer = Seq2SeqTrainer(
        model=model, args=training_arguments(config, checkpoints, eval_set is not None),
        train_dataset=train_set, eval_dataset=eval_set, processing_class=tokenizer, compute_loss_func=token_mean_loss,
        data_collator=make_collator(tokenizer, model, pad_to_multiple_of=8 if cuda else None))
    trainer.training_set = record  # written beside the run's settings: what it must never be scored on
    return trainer
