"""Fine-tuning runs: one `Seq2SeqTrainer` path for every method, launched alone, under torchrun or accelerate, or
inside a SageMaker job, and one rule for who writes (the main process).

Stages: resolve the run folder -> a freshly loaded base model wrapped for the method (`methods.py`) -> its
Trainer and data (`trainer_setup.py`) -> train (resumable; signals save a checkpoint) -> save the adapter or
model with its tokenizer -> write metrics and the loss curve. The base model is always a new load, so no
"original" model anywhere is ever modified by `get_peft_model`.
"""

import os
import pickle
import time
from collections.abc import Callable
from pathlib import Path

from transformers import Seq2SeqTrainer

from dialogsum_lab.config import TRAIN_CONFIG, TrainConfig
from dialogsum_lab.devices import hardware, torch_device
from dialogsum_lab.errors import Interrupted, UserError
from dialogsum_lab.files import is_pickle_refusal
from dialogsum_lab.job_env import in_training_job, job_layout
from dialogsum_lab.methods import PEFT_CONFIGS, build_model
from dialogsum_lab.model_card import write_model_card
from dialogsum_lab.modeling import BASE_MODEL_FILE, base_fingerprint, count_parameters, model_note
from dialogsum_lab.monitoring import StopOnSignal, peak_memory, weights_in_sync
from dialogsum_lab.reporting import plot_loss_curve
from dialogsum_lab.runs import (
    RunLayout,
    check_run_dir,
    last_complete_checkpoint,
    run_folder,
    run_folder_target,
    run_path,
    save_figure,
    share_files,
    write_json,
    write_yaml,
)
from dialogsum_lab.trainer_setup import make_trainer


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
    """Whether a failed run leaves something to resume from (else its folder is removed)."""
    return last_complete_checkpoint(RunLayout.of(folder).checkpoints, say=lambda message: None) is not None


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

    return PartialState(cpu=config.device == "cpu")


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


def _run(config: TrainConfig, layout: RunLayout, checkpoint: str | None, after_interrupt: str,
         check: Callable[[Seq2SeqTrainer], None] | None = None) -> float:
    """Train into `layout` and write everything a finished run holds; returns the training seconds.

    `check` sees the Trainer (its data prepared) before anything is written, and may refuse. Ctrl-C or SIGTERM
    saves a checkpoint and raises `Interrupted`, its message ending with `after_interrupt`. Under data
    parallelism every process trains and only the main one writes.
    """
    device = torch_device(config.device)
    if config.fsdp and device.type != "cuda":
        raise UserError("fsdp needs CUDA GPUs (accelerate shards only over GPUs; on CPU processes it would quietly run "
                        "plain data parallelism). Drop fsdp, or run on GPUs.")
    model, tokenizer = build_model(config)
    trainer = make_trainer(config, model, tokenizer, layout.checkpoints)  # the data, checked, before writing
    if check is not None:
        check(trainer)
    main = trainer.is_world_process_zero()
    if main:
        write_yaml(layout.root / TRAIN_CONFIG, config.to_dict())
        if model_note(config.model):
            print(f"Note: {model_note(config.model)}")
    stop = StopOnSignal()
    trainer.add_callback(stop)
    with peak_memory(device) as peak, stop.listening():
        start = time.perf_counter()
        try:
            trainer.train(resume_from_checkpoint=checkpoint)
        except pickle.UnpicklingError as err:
            if not is_pickle_refusal(err):
                raise UserError(f"checkpoint {checkpoint} is damaged ({' '.join(str(err).split())[:200]}). Remove "
                                "it to resume from the one before, or start a new run.") from err
            raise UserError(f"checkpoint {checkpoint} holds pickled code that torch's safe loader refuses "
                            f"({' '.join(str(err).split())[:200]}). Resume only checkpoints this project wrote, "
                            "or start a new run.") from err
        seconds = time.perf_counter() - start
    if stop.signum is not None and trainer.state.global_step < trainer.state.max_steps:
        raise Interrupted(f"interrupted at step {trainer.state.global_step}; {after_interrupt}", 128 + stop.signum)
    trainer.save_model(str(layout.model))  # on every process (sharded models gather); the main one writes
    if main:
        share_files(layout.model)
    sharded = trainer.is_fsdp_enabled  # each process holds a different shard: nothing to compare
    in_sync = weights_in_sync(model) if trainer.args.world_size > 1 and not sharded else None
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
        share_files(layout.model)
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
    """What a finished run holds beside its model: base fingerprint, trainer state, metrics, loss curve, card."""
    if config.method in PEFT_CONFIGS:
        write_json(layout.model / BASE_MODEL_FILE, base_fingerprint(model.get_base_model()))
    write_json(layout.file(RunLayout.TRAINING_SET), trainer.training_set)
    trainer.state.save_to_json(str(layout.file(RunLayout.TRAINER_STATE)))
    metrics = _train_metrics(config, model, trainer, seconds, len(trainer.train_dataset), layout.model)
    metrics |= {"device": config.device, "hardware": hardware(config.device)} | extra
    write_json(layout.file(RunLayout.TRAIN_METRICS), metrics)
    save_figure(plot_loss_curve(trainer.state.log_history, f"{config.method} on {config.model}"),
                layout.file(RunLayout.LOSS_CURVE))
    write_model_card(layout)


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
        "trainable_percent": counts["percent"], "used_parameters": counts["used"],
        "used_percent": counts["used_percent"], "saved_weights_mb": round(saved / 2**20, 3),
    }
