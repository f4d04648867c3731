"""Inside a SageMaker training job: what the container was given, read from its environment in one place.

A job hands the training script its data as channels (`SM_CHANNEL_TRAIN`, `SM_CHANNEL_VALIDATION`,
`SM_CHANNEL_TEST`: local folders), collects the model from `SM_MODEL_DIR` and everything else from
`SM_OUTPUT_DATA_DIR`, and keeps `/opt/ml/checkpoints` in step with S3 so that a restarted (spot) job finds its
checkpoints there. `dialogsum-lab train` with no `--data` and no `--out` uses all of these, so the job needs no
paths. Plain environment reads only: data, training and the command line ask this module, and it imports
nothing of theirs.
"""

import os
from pathlib import Path

from dialogsum_lab.config import CHANNELS_SOURCE
from dialogsum_lab.runs import RunLayout

CHANNELS = {"train": "SM_CHANNEL_TRAIN", "validation": "SM_CHANNEL_VALIDATION", "test": "SM_CHANNEL_TEST"}
# SageMaker's local path for checkpoints it syncs with S3 (CheckpointConfig's default); the variable moves it.
CHECKPOINTS = Path(os.environ.get("DIALOGSUM_LAB_JOB_CHECKPOINTS", "/opt/ml/checkpoints"))
TENSORBOARD_DIR = "/opt/ml/output/tensorboard"


def in_training_job() -> bool:
    """True inside a SageMaker training container (it sets SM_MODEL_DIR)."""
    return bool(os.environ.get("SM_MODEL_DIR"))


def channel_folders() -> dict[str, Path]:
    """The data channels this job was given, by split."""
    return {split: Path(os.environ[name]) for split, name in CHANNELS.items() if os.environ.get(name)}


def with_job_data(settings: dict) -> dict:
    """Training settings with the job's channels as their data, when a job gave channels and no --data."""
    if "data" not in settings and channel_folders():
        return settings | {"data": CHANNELS_SOURCE}
    return settings


def job_layout() -> RunLayout:
    """Settings, metrics and plots to SM_OUTPUT_DATA_DIR; the model to SM_MODEL_DIR; checkpoints to
    /opt/ml/checkpoints when the job has one (a checkpoint S3 URI), else beside the metrics."""
    root = Path(os.environ.get("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data"))
    checkpoints = CHECKPOINTS if CHECKPOINTS.is_dir() else root / "checkpoints"
    return RunLayout(root=root, model=Path(os.environ["SM_MODEL_DIR"]), checkpoints=checkpoints)
