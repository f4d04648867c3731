"""SageMaker training jobs against a fake AWS (moto): no real AWS call anywhere."""

import shutil

import pytest
from helpers import launched, upload_job_results

from dialogsum_lab.cli import main
from dialogsum_lab.sagemaker_launch import job_spec

pytestmark = pytest.mark.slow

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.10.0-gpu-py313"


def test_the_job_definition_is_decided_field_by_field():
    settings = {"config": "lab", "method": "lora", "max_steps": "500", "lora_target_modules": "q,v"}
    spec = job_spec(settings, instance_type="ml.g5.12xlarge", role=ROLE, bucket="b", region="us-east-1",
                    channels={"train": "s3://b/data"}, spot=True, max_run_s=3600, image_uri=IMAGE, name="job-1")
    assert (spec.name, spec.image, spec.instance_type, spec.instance_count) == ("job-1", IMAGE, "ml.g5.12xlarge", 1)
    assert spec.processes_per_instance == 4 and spec.distributed  # 4 GPUs: torchrun
    assert spec.hyperparameters == settings and spec.channels == {"train": "s3://b/data"}
    assert (spec.spot, spec.max_run_s, spec.max_wait_s) == (True, 3600, 7200)
    assert spec.checkpoint_s3_uri == "s3://b/dialogsum-lab/checkpoints/job-1"
    assert spec.tensorboard_s3_uri == "s3://b/dialogsum-lab/tensorboard/job-1"
    one = job_spec({"method": "full"}, instance_type="ml.g5.xlarge", role=ROLE, bucket="b", region="us-east-1",
                   channels={}, image_uri=IMAGE)
    assert not one.distributed and one.max_wait_s is None and one.name.startswith("dialogsum-full-")
    two_nodes = job_spec({}, instance_type="ml.g5.xlarge", instance_count=2, role=ROLE, bucket="b",
                         region="us-east-1", channels={}, image_uri=IMAGE)
    assert two_nodes.distributed
    own = job_spec({"config": "/home/me/mine.yaml"}, instance_type="ml.g5.xlarge", role=ROLE, bucket="b",
                   region="us-east-1", channels={}, image_uri=IMAGE)
    assert own.files == ("/home/me/mine.yaml",) and own.hyperparameters["config"] == "mine.yaml"


def test_launch_creates_the_job_with_data_code_and_spot(aws, capsys, tmp_path):
    assert main(["sagemaker", "launch", "--config", "smoke", "--method", "lora", "--instance-type", "ml.g5.12xlarge",
                 "--spot", "--max-run", "3600", "--no-wait", "--role", ROLE, "--bucket", "labbucket",
                 "--max-steps", "5", "--lora-target-modules", "q", "v", "--multitask", "false"]) == 0
    job = launched(capsys)
    d = aws.client("sagemaker").describe_training_job(TrainingJobName=job)
    assert d["AlgorithmSpecification"]["TrainingImage"].startswith(
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.10")
    assert d["HyperParameters"] == {"config": "smoke", "method": "lora", "max_steps": "5",
                                    "lora_target_modules": "q,v", "multitask": "False"}
    assert d["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert d["EnableManagedSpotTraining"] is True
    base = job.rsplit("-", 1)[0]  # SageMaker appends a timestamp to the launch's own name
    assert d["CheckpointConfig"]["S3Uri"] == f"s3://labbucket/dialogsum-lab/checkpoints/{base}"
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in d["InputDataConfig"]}
    assert {"train", "code"} <= set(channels)
    keys = [o["Key"] for o in aws.client("s3").list_objects_v2(Bucket="labbucket")["Contents"]]
    train_prefix = channels["train"].removeprefix("s3://labbucket/")
    assert {f"{train_prefix}/{s}.jsonl" for s in ("train", "validation", "test")} <= set(keys)  # the data, uploaded
    code = [k.rsplit("/", 1)[1] for k in keys if k.startswith(channels["code"].removeprefix("s3://labbucket/"))]
    assert "train_entry.py" in code and "requirements.txt" in code and any(k.endswith(".whl") for k in code)
    assert any("distributed.json" in k for k in keys)  # 4 GPUs: the torchrun driver is configured


def test_download_gives_a_run_folder_that_evaluates(aws, capsys, tmp_path):
    from dialogsum_lab.config import TrainConfig
    from dialogsum_lab.training import train

    run = train(TrainConfig(method="lora", max_steps=2, eval_strategy="no", save_strategy="no", device="cpu"),
                tmp_path / "trained")
    assert main(["sagemaker", "launch", "--config", "smoke", "--no-wait", "--role", ROLE, "--bucket", "labbucket",
                 "--data", "knkarthick/dialogsum"]) == 0
    job = launched(capsys)
    sm, s3 = aws.client("sagemaker"), aws.client("s3")
    d = sm.describe_training_job(TrainingJobName=job)
    assert d["HyperParameters"]["data"] == "knkarthick/dialogsum" and "train" not in {
        c["ChannelName"] for c in d["InputDataConfig"]}  # a Hub id is fetched by the container itself
    upload_job_results(s3, d, run, tmp_path)
    assert d["TrainingJobStatus"] == "Completed", f"moto reports the job as {d['TrainingJobStatus']}"
    out = tmp_path / "downloaded"
    assert main(["sagemaker", "download", job, "--out", str(out)]) == 0
    assert (out / "config.yaml").exists() and (out / "model" / "adapter_model.safetensors").exists()
    assert main(["sagemaker", "status", job]) == 0 and "status: Completed" in capsys.readouterr().out
    assert main(["evaluate", str(out), "--limit", "2", "--max-new-tokens", "4", "--bootstrap-samples", "10"]) == 0
    shutil.rmtree(out)


def test_without_the_sdk_the_command_says_how_to_install_it(monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "sagemaker", None)
    assert main(["sagemaker", "status", "some-job"]) == 2
    assert "pip install -e '.[sagemaker]'" in capsys.readouterr().err
