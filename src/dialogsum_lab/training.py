"""Fine-tuning: one `Seq2SeqTrainer` path for full fine-tuning, LoRA, soft prompts, prefix tuning and IA3.

Stages: resolve the run folder -> data -> a freshly loaded base model (wrapped
by PEFT when asked) -> train (resumable) -> save the adapter or model with its
tokenizer -> write metrics and the loss curve. The base model is always a new
load, so no "original" model anywhere is ever modified by `get_peft_model`.
"""

import contextlib
import json
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import psutil
import torch
from datasets import Dataset
from peft import (
    IA3Config,
    LoraConfig,
    PeftConfig,
    PrefixTuningConfig,
    PromptTuningConfig,
    PromptTuningInit,
    TaskType,
    get_peft_model,
)
from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, TrainerCallback, set_seed
from transformers.integrations import is_tensorboard_available

from dialogsum_lab.config import TRAIN_CONFIG, TrainConfig
from dialogsum_lab.data import (
    build_multitask,
    build_prompts,
    head,
    load_dialogsum,
    make_collator,
    select_split,
    tokenize,
)
from dialogsum_lab.errors import Interrupted, UserError
from dialogsum_lab.modeling import (
    BASE_MODEL_FILE,
    TINY_MODEL,
    TINY_MODEL_NOTE,
    base_fingerprint,
    count_parameters,
    fix_prefix_generation,
    load_model_and_tokenizer,
    resolve_device,
    resolve_model_path,
)
from dialogsum_lab.reporting import plot_loss_curve
from dialogsum_lab.runs import (
    RunLayout,
    check_run_dir,
    claim,
    run_folder,
    run_folder_target,
    run_path,
    save_figure,
    write_json,
    write_yaml,
)
from dialogsum_lab.sagemaker_jobs import in_training_job, job_layout

SEQ2SEQ = TaskType.SEQ_2_SEQ_LM

# method -> builder of its peft config (full fine-tuning has none)
PEFT_CONFIGS: dict[str, Callable[[TrainConfig, str], PeftConfig]] = {
    "lora": lambda c, path: LoraConfig(task_type=SEQ2SEQ, r=c.lora_r, lora_alpha=c.lora_alpha, bias="none",
                                       target_modules=list(c.lora_target_modules), lora_dropout=c.lora_dropout),
    "prompt_tuning": lambda c, path: PromptTuningConfig(
        task_type=SEQ2SEQ, num_virtual_tokens=c.num_virtual_tokens, prompt_tuning_init=PromptTuningInit.TEXT,
        prompt_tuning_init_text=c.prompt_init_text, tokenizer_name_or_path=path),
    "prefix_tuning": lambda c, path: PrefixTuningConfig(task_type=SEQ2SEQ, num_virtual_tokens=c.num_virtual_tokens),
    "ia3": lambda c, path: IA3Config(task_type=SEQ2SEQ),
}


def peft_config(config: TrainConfig) -> PeftConfig | None:
    """The method's peft configuration, built from the run's settings (None for full fine-tuning)."""
    if config.method not in PEFT_CONFIGS:
        return None
    return PEFT_CONFIGS[config.method](config, resolve_model_path(config.model))


def load_base(config: TrainConfig):
    """The base model, loaded fresh in fp32 onto the run's device, and its tokenizer (after seeding every
    random generator with the run's seed, so what is built from here on is reproducible)."""
    set_seed(config.seed)
    device = str(resolve_device(config.device))
    model, tokenizer = load_model_and_tokenizer(config.model, dtype="float32", device=device)
    if config.method == "lora":
        _check_target_modules(model, config.lora_target_modules)
    return model, tokenizer


def wrap(model, config: TrainConfig):
    """`model` made ready to train with the method: wrapped by `get_peft_model` unless it is full fine-tuning."""
    adapter = peft_config(config)
    if adapter is not None:
        model = fix_prefix_generation(get_peft_model(model, adapter))
    if config.gradient_checkpointing:
        model.config.use_cache = False
        if adapter is not None:
            model.enable_input_require_grads()  # frozen embeddings would otherwise cut the graph
    return model.train()


def build_model(config: TrainConfig):
    """A fresh base model, wrapped for the method; returns (model, tokenizer)."""
    model, tokenizer = load_base(config)
    return wrap(model, config), tokenizer


def _check_target_modules(model, targets: list[str]) -> None:
    """Every LoRA target must name a layer of the model (peft matches a name's last parts)."""
    names = [name for name, _ in model.named_modules()]
    missing = [t for t in targets if not any(n == t or n.endswith(f".{t}") for n in names)]
    if missing:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
        raise UserError(f"lora_target_modules {', '.join(missing)} name no layer of {model.config.name_or_path}. "
                        f"Its linear layers are: {', '.join(linear)} (the lab uses q and v).")


def prepare_datasets(config: TrainConfig, tokenizer) -> tuple[Dataset, Dataset | None]:
    """Tokenised training and evaluation sets (unpadded; the collator pads per batch)."""
    data = load_dialogsum(config.data)
    train = select_split(data, config.train_split)
    evaluation = None
    if config.eval_holdout:
        if config.eval_holdout >= len(train):
            raise UserError(f"eval_holdout {config.eval_holdout} leaves nothing to train on ({len(train)} dialogues).")
        cut = len(train) - config.eval_holdout
        train, evaluation = train.select(range(cut)), train.select(range(cut, len(train)))
    elif config.eval_strategy != "no":
        evaluation = select_split(data, config.eval_split)
        if evaluation is train:
            raise UserError(f"{config.data} has a single split, so training and evaluation would share it. "
                            "Set eval_holdout (e.g. --eval-holdout 100) or eval_strategy no.")
    train = head(train, config.limit_train)
    evaluation = head(evaluation, config.limit_eval) if evaluation is not None else None
    for name, split in (("training", train), ("evaluation", evaluation)):
        if split is not None and len(split) == 0:
            raise UserError(f"the {name} split of {config.data} has no dialogues. Check --data and the split "
                            "settings (train_split, eval_split, limit_train, limit_eval), or set eval_strategy no.")

    def encode(split: Dataset) -> Dataset:
        pairs = (build_multitask(split, config.seed, config.prompt_template) if config.multitask
                 else build_prompts(split, "summary", config.prompt_template))
        return tokenize(pairs, tokenizer, config.max_source_length, config.max_target_length)

    return encode(train), (encode(evaluation) if evaluation is not None else None)


def training_arguments(config: TrainConfig, checkpoints: Path, has_eval: bool) -> Seq2SeqTrainingArguments:
    device = resolve_device(config.device)
    bf16 = config.precision == "bf16" or (
        config.precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())
    return Seq2SeqTrainingArguments(
        output_dir=str(checkpoints),
        per_device_train_batch_size=config.batch_size, per_device_eval_batch_size=config.eval_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.resolved_learning_rate, weight_decay=config.weight_decay,
        num_train_epochs=config.epochs, max_steps=config.max_steps, warmup_steps=config.warmup_ratio,
        lr_scheduler_type=config.lr_scheduler, max_grad_norm=config.max_grad_norm,
        bf16=bf16, use_cpu=device.type == "cpu",
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
    train_set, eval_set = prepare_datasets(config, tokenizer)
    cuda = resolve_device(config.device).type == "cuda"
    return Seq2SeqTrainer(
        model=model, args=training_arguments(config, checkpoints, eval_set is not None),
        train_dataset=train_set, eval_dataset=eval_set, processing_class=tokenizer, compute_loss_func=token_mean_loss,
        data_collator=make_collator(tokenizer, model, pad_to_multiple_of=8 if cuda else None))


def train(config: TrainConfig, out: str | Path | None = None, overwrite: bool = False) -> Path:
    """Train one method and return its run folder.

    With `overwrite`, an earlier run in `out` is replaced only when this one
    succeeds. A failed new run leaves nothing behind but the checkpoints it
    may be resumed from.
    """
    if out is None and in_training_job():
        return _train_in_job(config)
    processes = _processes(config)
    if processes is not None:
        return _train_distributed(config, out, overwrite, processes)
    path = run_path(out, f"train-{config.method}")
    with run_folder(path, overwrite, keep_on_failure=_has_checkpoints) as folder:
        seconds = _run(config, RunLayout.of(folder), None, _after_interrupt(path, folder))
    print(f"Trained {config.method} in {seconds:.1f}s; saved to {RunLayout.of(path).model}")
    return path


def _has_checkpoints(folder: Path) -> bool:
    return RunLayout.of(folder).checkpoints.is_dir()


def _after_interrupt(path: Path, folder: Path) -> str:
    """What an interrupted run into `folder` (`path`, or the staging folder that would replace it) leaves."""
    if folder == path:
        return (f"a checkpoint is saved in {RunLayout.of(path).checkpoints}. Resume with: dialogsum-lab train "
                f"--resume --out {path}")
    return f"the unfinished replacement is discarded and the earlier run in {path} is kept. Run again with --overwrite."


def _train_in_job(config: TrainConfig) -> Path:
    """Inside a SageMaker training job: write where SageMaker collects, and pick up a restarted job's checkpoint."""
    layout = job_layout()
    checkpoint = last_complete_checkpoint(layout.checkpoints)
    if checkpoint:
        print(f"Resuming from {checkpoint}: this job was restarted.")
    for folder in (layout.root, layout.model):
        folder.mkdir(parents=True, exist_ok=True)
    seconds = _run(config, layout, checkpoint, f"a checkpoint is saved in {layout.checkpoints}; a restarted "
                                               "job resumes from it.")
    processes = _processes(config)
    if processes is None or processes.is_main_process:
        print(f"Trained {config.method} in {seconds:.1f}s; model in {layout.model}, metrics in {layout.root}")
    return layout.root


def _processes(config: TrainConfig):
    """accelerate's process state when launched by torchrun or `accelerate launch` (WORLD_SIZE > 1), else None."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    from accelerate import PartialState

    return PartialState(cpu=resolve_device(config.device).type == "cpu")


def _train_distributed(config: TrainConfig, out: str | Path | None, overwrite: bool, processes) -> Path:
    """Data-parallel training: every process trains, only the main one writes the run folder.

    All processes must checkpoint into the same folder (each saves its own
    random state there), so they agree on it first, before anything is
    written; the main process then claims and fills it as `train` does.
    """
    from accelerate.utils import broadcast_object_list

    path = Path(broadcast_object_list([str(run_path(out, f"train-{config.method}"))])[0])  # one timestamp
    check_run_dir(path, overwrite)
    target = run_folder_target(path)
    processes.wait_for_everyone()  # every process has looked before the main one writes
    if not processes.is_main_process:
        processes.wait_for_everyone()
        _run(config, RunLayout.of(target), None, _after_interrupt(path, target))
        return path
    with run_folder(path, overwrite, keep_on_failure=_has_checkpoints) as folder:
        processes.wait_for_everyone()  # the folder exists before the others write their random states into it
        seconds = _run(config, RunLayout.of(folder), None, _after_interrupt(path, folder))
    print(f"Trained {config.method} on {processes.num_processes} processes in {seconds:.1f}s; saved to "
          f"{RunLayout.of(path).model}")
    return path


def resume(run_dir: str | Path, overrides: dict | None = None) -> Path:
    """Continue a run from its last checkpoint (overrides such as max_steps may extend it)."""
    run_dir = Path(run_dir)
    if not (run_dir / TRAIN_CONFIG).is_file():
        raise UserError(f"{run_dir} has no {TRAIN_CONFIG}: it is not a training run folder.")
    checkpoint = last_complete_checkpoint(RunLayout.of(run_dir).checkpoints)
    if checkpoint is None:
        raise UserError(f"{run_dir} has no checkpoint to resume from (save_strategy no?). Start a new run instead.")
    config = TrainConfig.from_dict(TrainConfig.load(run_dir / TRAIN_CONFIG).to_dict() | (overrides or {}))
    processes = _processes(config)
    main = processes is None or processes.is_main_process
    with claim(run_dir) if main else contextlib.nullcontext():
        seconds = _run(config, RunLayout.of(run_dir), checkpoint, _after_interrupt(run_dir, run_dir))
    if main:
        print(f"Resumed {config.method} and trained {seconds:.1f}s more; saved to {RunLayout.of(run_dir).model}")
    return run_dir


def last_complete_checkpoint(folder: Path) -> str | None:
    """The newest checkpoint whose `trainer_state.json` (the Trainer writes it last) is whole: a process killed
    while saving leaves a partial newest checkpoint, which resuming must skip."""
    for checkpoint in sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]), reverse=True):
        try:
            json.loads((checkpoint / "trainer_state.json").read_text())
            return str(checkpoint)
        except (OSError, ValueError):
            continue
    return None


def _run(config: TrainConfig, layout: RunLayout, checkpoint: str | None, after_interrupt: str) -> float:
    """Train into `layout` and write everything a finished run holds; returns the training seconds.

    Ctrl-C or SIGTERM saves a checkpoint and raises `Interrupted`, its message ending with `after_interrupt`.
    Under data parallelism every process trains and only the main one writes.
    """
    device = resolve_device(config.device)
    if config.fsdp and device.type != "cuda":
        raise UserError("fsdp needs CUDA GPUs (accelerate shards only over GPUs; on CPU processes it would quietly run "
                        "plain data parallelism). Drop fsdp, or run on GPUs.")
    model, tokenizer = build_model(config)
    trainer = make_trainer(config, model, tokenizer, layout.checkpoints)  # the data, checked, before writing
    main = trainer.is_world_process_zero()
    if main:
        write_yaml(layout.root / TRAIN_CONFIG, config.to_dict())
        if config.model == TINY_MODEL:
            print(f"Note: {TINY_MODEL_NOTE}")
    stop = _StopOnSignal()
    trainer.add_callback(stop)
    with peak_memory(device) as peak, stop.listening():
        start = time.perf_counter()
        try:
            trainer.train(resume_from_checkpoint=checkpoint)
        except pickle.UnpicklingError as err:
            raise UserError(f"checkpoint {checkpoint} holds pickled data that torch's safe loader refuses "
                            f"({' '.join(str(err).split())[:200]}). Resume only checkpoints this project wrote, "
                            "or start a new run.") from err
        seconds = time.perf_counter() - start
    if stop.signum is not None and trainer.state.global_step < trainer.state.max_steps:
        raise Interrupted(f"interrupted at step {trainer.state.global_step}; {after_interrupt}", 128 + stop.signum)
    trainer.save_model(str(layout.model))  # on every process (sharded models gather); the main one writes
    sharded = trainer.is_fsdp_enabled  # each process holds a different shard: nothing to compare
    in_sync = _weights_in_sync(model) if trainer.args.world_size > 1 and not sharded else None
    if main:
        _write_results(config, trainer, model, layout, seconds, {
            "peak_memory_mb": round(peak["bytes"] / 2**20, 1), "peak_memory_kind": peak["kind"],
            "processes": trainer.args.world_size,
            "parallelism": "fsdp" if sharded else "ddp" if trainer.args.world_size > 1 else "none",
            "weights_identical_across_processes": in_sync})
    return seconds


def checkpoint_folder(run_dir: str | Path) -> Path:
    """Where a run trained cell by cell (a notebook) checkpoints until `save_run` moves them into its folder."""
    run_dir = Path(run_dir)
    return run_dir.parent / f".{run_dir.name}.checkpoints"


def save_run(trainer: Seq2SeqTrainer, config: TrainConfig, run_dir: str | Path, overwrite: bool = False) -> Path:
    """Write a run trained step by step (a notebook calling `trainer.train()` itself) into `run_dir`, as `train`
    writes its own: settings, model or adapter with its tokenizer, metrics, trainer state, loss curve, and the
    checkpoints. An earlier run there is replaced only with `overwrite`, and only once all of this is written."""
    run_dir = Path(run_dir)
    checkpoints = Path(trainer.args.output_dir)
    state = trainer.state
    if state.global_step == 0 or state.global_step < state.max_steps:
        raise UserError(f"this {config.method} model has trained {state.global_step} of {state.max_steps or '?'} "
                        "steps: run trainer.train() to the end (after an interruption: "
                        "trainer.train(resume_from_checkpoint=True) where checkpoints were saved) before saving it "
                        "as a finished run.")
    with run_folder(run_dir, overwrite) as folder:
        layout = RunLayout.of(folder)
        write_yaml(layout.root / TRAIN_CONFIG, config.to_dict())
        trainer.save_model(str(layout.model))
        seconds = next((h["train_runtime"] for h in reversed(trainer.state.log_history) if "train_runtime" in h), 0.0)
        _write_results(config, trainer, trainer.model, layout, seconds, {
            "peak_memory_mb": None, "peak_memory_kind": "not measured (trained cell by cell)", "processes": 1,
            "parallelism": "none", "weights_identical_across_processes": None})
        if checkpoints.is_dir() and any(checkpoints.iterdir()):
            checkpoints.rename(layout.checkpoints)
        elif checkpoints.is_dir():
            checkpoints.rmdir()
    print(f"Saved the {config.method} run to {run_dir}")
    return run_dir


def _write_results(config: TrainConfig, trainer: Seq2SeqTrainer, model, layout: RunLayout, seconds: float,
                   extra: dict) -> None:
    """What a finished run holds beside its model: base fingerprint, trainer state, metrics, loss curve."""
    if config.method in PEFT_CONFIGS:
        write_json(layout.model / BASE_MODEL_FILE, base_fingerprint(model.get_base_model()))
    trainer.state.save_to_json(str(layout.root / "trainer_state.json"))
    metrics = _train_metrics(config, model, trainer, seconds, len(trainer.train_dataset), layout.model)
    metrics |= {"device": str(resolve_device(config.device))} | extra
    write_json(layout.root / "train_metrics.json", metrics)
    save_figure(plot_loss_curve(trainer.state.log_history, f"{config.method} on {config.model}"),
                layout.root / "loss_curve.png")


def _weights_in_sync(model) -> bool:
    """Every process holds the same trained weights (data parallelism must keep them bit-identical)."""
    from accelerate.utils import gather_object

    checksum = float(sum(p.detach().double().sum() for p in model.parameters() if p.requires_grad))
    return len(set(gather_object([checksum]))) == 1


class _StopOnSignal(TrainerCallback):
    """Ctrl-C or SIGTERM (docker stop, a spot reclaim) while training: checkpoint at the end of this step, stop."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def on_step_end(self, args, state, control, **kwargs):
        if self.signum is not None:
            control.should_save = control.should_training_stop = True
        return control

    @contextmanager
    def listening(self):
        """Catch SIGINT and SIGTERM while the block runs (main thread only); a second signal stops at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handle(signum: int, frame) -> None:
            if self.signum is not None:
                raise KeyboardInterrupt
            self.signum = signum
            print("\nStopping after this step and saving a checkpoint (signal again to stop at once).", file=sys.stderr)

        previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


@contextmanager
def peak_memory(device: torch.device, interval: float = 0.005):
    """Peak memory while the block runs: CUDA's allocator peak, or the process RSS sampled every 5 ms.

    (The RSS high-water mark of the whole process would carry over from earlier work in the same
    process, e.g. the demo's previous method.)
    """
    result = {"bytes": 0, "kind": "cuda_max_allocated" if device.type == "cuda" else "process_rss_sampled_peak"}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        yield result
        result["bytes"] = torch.cuda.max_memory_allocated(device)
        return
    process, done = psutil.Process(), threading.Event()

    def sample() -> None:
        while not done.is_set():
            result["bytes"] = max(result["bytes"], process.memory_info().rss)
            done.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield result
    finally:
        done.set()
        sampler.join()


def _train_metrics(config, model, trainer, seconds: float, n_examples: int, model_dir: Path) -> dict:
    counts = count_parameters(model)
    history = trainer.state.log_history
    losses = [h["loss"] for h in history if "loss" in h]
    eval_losses = [h["eval_loss"] for h in history if "eval_loss" in h]
    saved = sum(f.stat().st_size for f in model_dir.glob("*.safetensors"))
    return {
        "method": config.method, "model": config.model, "data": config.data,
        "precision": "bf16" if trainer.args.bf16 else "fp32", "train_examples": n_examples,
        "global_step": trainer.state.global_step, "epochs": trainer.state.epoch,
        "train_seconds": round(seconds, 3),
        "train_samples_per_second": next((h["train_samples_per_second"] for h in reversed(history)
                                          if "train_samples_per_second" in h), None),
        "first_train_loss": losses[0] if losses else None, "final_train_loss": losses[-1] if losses else None,
        "final_eval_loss": eval_losses[-1] if eval_losses else None,
        "trainable_parameters": counts["trainable"], "total_parameters": counts["total"],
        "trainable_percent": counts["percent"], "saved_weights_mb": round(saved / 2**20, 3),
    }
