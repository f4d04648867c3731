"""Continuing a training run from its last checkpoint, without ever mixing two runs in one folder.

The run's saved settings are compared with what the command asks before anything is written. Only how long
it trains and how it logs, saves and measures its eval loss may change (`RESUMABLE`); any other difference
(another method, model, data, learning rate, adapter shape, seed ...) would train something else on top of
this run's checkpoint, so it is refused in one line naming each difference. The data is checked too: the
dialogues must be the ones the run began with (`training_set.json`). What changed is kept in the run's
`history.json`; evaluations made before are left stale, and `compare` refuses them.
"""

import contextlib
import time
from pathlib import Path

from dialogsum_lab.config import TRAIN_CONFIG, TrainConfig
from dialogsum_lab.errors import UserError
from dialogsum_lab.files import read_json
from dialogsum_lab.runs import RunLayout, claim, last_complete_checkpoint, write_json
from dialogsum_lab.training import _after_interrupt, _processes, _run
from dialogsum_lab.training_data import TRAINING_SET

# Settings a resumed run may change: its length, and its logging, checkpointing and eval-loss cadence.
RESUMABLE = ("epochs", "max_steps", "logging_steps", "save_strategy", "save_steps", "save_total_limit",
             "eval_strategy", "eval_batch_size", "limit_eval")
HISTORY = RunLayout.HISTORY


def resume(run_dir: str | Path, overrides: dict | None = None) -> Path:
    """Continue the run in `run_dir` from its last complete checkpoint; `overrides` may only extend or re-pace it."""
    run_dir = Path(run_dir)
    if not (run_dir / TRAIN_CONFIG).is_file():
        raise UserError(f"{run_dir} has no {TRAIN_CONFIG}: it is not a training run folder.")
    saved = TrainConfig.load(run_dir / TRAIN_CONFIG)
    config = TrainConfig.from_dict(saved.to_dict() | (overrides or {}))
    changed = settings_changed(saved, config)
    refused = {k: v for k, v in changed.items() if k not in RESUMABLE}
    if refused:
        said = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in refused.items())
        raise UserError(f"resuming {run_dir} would train something else on top of its checkpoint ({said}). Resume "
                        f"changes only {', '.join(RESUMABLE)}; for other settings start a new run (another --out).")
    checkpoint = last_complete_checkpoint(RunLayout.of(run_dir).checkpoints)
    if checkpoint is None:
        raise UserError(f"{run_dir} has no complete checkpoint to resume from (save_strategy no, or it stopped before "
                        f"its first one). Start it again: dialogsum-lab train ... --out {run_dir} --overwrite.")
    processes = _processes(config)
    main = processes is None or processes.is_main_process
    with claim(run_dir) if main else contextlib.nullcontext():
        seconds = _run(config, RunLayout.of(run_dir), checkpoint, _after_interrupt(run_dir, run_dir),
                       check=lambda trainer: _same_data(run_dir, trainer.training_set))
        if main:
            _record(run_dir, checkpoint, changed)
    if main:
        stale = [p.name for p in RunLayout.of(run_dir).evaluations()]
        note = (f" Evaluations made before ({', '.join(stale)}) now score older weights: evaluate again."
                if stale else "")
        print(f"Resumed {config.method} and trained {seconds:.1f}s more; saved to {RunLayout.of(run_dir).model}.{note}")
    return run_dir


def settings_changed(saved: TrainConfig, asked: TrainConfig) -> dict[str, tuple]:
    """{setting: (saved, asked)} for every setting that differs."""
    old, new = saved.to_dict(), asked.to_dict()
    return {k: (old[k], new[k]) for k in new if old.get(k) != new[k]}


def _same_data(run_dir: Path, now: dict) -> None:
    """Refuse data other than the dialogues the run began with (another source, or its file changed since)."""
    record = run_dir / TRAINING_SET
    if not record.is_file():
        return  # a run made before training sets were recorded: nothing to compare with
    before = read_json(record)
    if (before["ids"], before["text_sha256"]) != (now["ids"], now["text_sha256"]):
        differ = sum(a != b for a, b in zip(before["text_sha256"], now["text_sha256"], strict=False))
        differ += abs(len(before["ids"]) - len(now["ids"]))
        raise UserError(f"the training data of {run_dir} is no longer what it began with ({differ} of "
                        f"{before['dialogues']} dialogues differ, from {before['data']!r}): resuming would train the "
                        "rest of the run on other dialogues. Resume with its own data, or start a new run.")


def _record(run_dir: Path, checkpoint: str, changed: dict) -> None:
    history = read_json(run_dir / HISTORY, kind=list) if (run_dir / HISTORY).is_file() else []
    history.append({"resumed_from": Path(checkpoint).name, "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    "changed": {k: {"from": old, "to": new} for k, (old, new) in changed.items()}})
    write_json(run_dir / HISTORY, history)
