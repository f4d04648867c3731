"""Settings the tests share: a few quick training steps on the toy model, and SageMaker jobs on moto."""

import tarfile

from dialogsum_lab.config import TrainConfig

LEARNING_RATES = {"full": 3e-3, "lora": 1e-2, "prompt_tuning": 0.3, "prefix_tuning": 3e-2, "ia3": 3e-2}


def quick(method: str, **overrides) -> TrainConfig:
    """A few steps on a fixed batch of 8 sample dialogues: enough to see the loss fall."""
    values = {"method": method, "limit_train": 8, "limit_eval": 4, "batch_size": 8, "max_steps": 8,
              "logging_steps": 1, "learning_rate": LEARNING_RATES[method], "eval_strategy": "no",
              "save_strategy": "no", "device": "cpu", "seed": 0}
    return TrainConfig(**(values | overrides))


# `dialogsum-lab train` for a toy LoRA run with checkpoints at steps 2 and 4 (resume and damaged-file tests).
CHECKPOINTED_TRAIN = ["train", "--config", "smoke", "--method", "lora", "--max-steps", "4", "--save-strategy", "steps",
                      "--save-steps", "2", "--eval-strategy", "no", "--device", "cpu", "--lora-r", "4"]


def one_line_error(capsys) -> str:
    """The command's stderr, asserted to be the one-line error a user may cause (no traceback)."""
    err = capsys.readouterr().err.strip()
    assert err.startswith("dialogsum-lab: error:") and "Traceback" not in err and "\n" not in err, err
    return err


def launched(capsys) -> str:
    """The training job `sagemaker launch` just printed."""
    out = capsys.readouterr().out
    return out.split("Training job ")[1].split(" ")[0]


def upload_job_results(s3, description: dict, run, work) -> None:
    """What a training job would have written for `run` on moto (its jobs never run): SM_MODEL_DIR as
    model.tar.gz and SM_OUTPUT_DATA_DIR as output.tar.gz, where SageMaker puts them."""
    bucket, key = description["ModelArtifacts"]["S3ModelArtifacts"].removeprefix("s3://").split("/", 1)
    for name, folder in (("model.tar.gz", run / "model"), ("output.tar.gz", run)):
        with tarfile.open(work / name, "w:gz") as tar:
            for path in folder.iterdir():
                if path.name not in ("model", "checkpoints"):
                    tar.add(path, arcname=path.name)
        s3.upload_file(str(work / name), bucket, key.rsplit("/", 1)[0] + "/" + name)
