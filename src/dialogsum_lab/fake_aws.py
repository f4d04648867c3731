"""A fake AWS, so that every SageMaker step runs without an account: notebook 06 and the tests, offline.

moto fakes S3, SageMaker, its runtime and CloudWatch Logs inside this process; the jobs and endpoints created
there never run, so `play_job_locally` does what a job's container would and `answer_like_the_endpoint` what an
endpoint's would. Every call the notebook makes is real SDK code.
"""

import os
import subprocess
import sys
import tarfile
from pathlib import Path

from dialogsum_lab.errors import UserError
from dialogsum_lab.files import unpack_archive
from dialogsum_lab.job_env import CHANNELS
from dialogsum_lab.sagemaker_launch import artifacts


def start_fake_aws(bucket: str = "dialogsum-lab-fake", region: str = "us-east-1") -> tuple[str, str]:
    """moto's fake S3, SageMaker and CloudWatch Logs for this process, with a bucket and a role; returns them.

    Jobs created there never run: `play_job_locally` does what the container would.
    """
    import boto3
    from moto import mock_aws

    os.environ.update({"AWS_ACCESS_KEY_ID": "fake", "AWS_SECRET_ACCESS_KEY": "fake", "AWS_DEFAULT_REGION": region,
                       "SAGEMAKER_VALIDATE_ROLE": "false"})  # moto cannot simulate IAM policies
    mock_aws().start()
    boto3.client("s3").create_bucket(Bucket=bucket)
    return bucket, "arn:aws:iam::123456789012:role/fake-sagemaker-role"


def play_job_locally(job: str, work: Path) -> None:
    """Run a job created on the fake AWS as its container would: its train channel downloaded, `dialogsum-lab
    train` with its hyperparameters and the SM_* variables, and the model and output uploaded where SageMaker
    puts them (model.tar.gz, output.tar.gz)."""
    import boto3

    sm, s3 = boto3.client("sagemaker"), boto3.client("s3")
    d = sm.describe_training_job(TrainingJobName=job)
    env = os.environ | {"SM_MODEL_DIR": str(work / "model"), "SM_OUTPUT_DATA_DIR": str(work / "output")}
    for channel in d["InputDataConfig"]:
        if channel["ChannelName"] in CHANNELS:
            bucket, prefix = channel["DataSource"]["S3DataSource"]["S3Uri"].removeprefix("s3://").split("/", 1)
            folder = work / "input" / channel["ChannelName"]
            folder.mkdir(parents=True, exist_ok=True)
            for obj in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
                s3.download_file(bucket, obj["Key"], str(folder / obj["Key"].rsplit("/", 1)[1]))
            env[CHANNELS[channel["ChannelName"]]] = str(folder)
    options = [part for key, value in d["HyperParameters"].items() for part in (f"--{key}", value)]
    done = subprocess.run([sys.executable, "-m", "dialogsum_lab.cli", "train", *options], env=env,
                          capture_output=True, text=True)
    if done.returncode:
        raise UserError(f"the local stand-in for job {job} failed: {done.stderr.strip()[-1000:]}")
    print(f"{job}: {done.stdout.strip().splitlines()[-1]}")
    for (name, (bucket, key)), folder in zip(artifacts(d).items(), (work / "model", work / "output"), strict=True):
        with tarfile.open(work / name, "w:gz") as tar:
            for path in folder.iterdir():
                tar.add(path, arcname=path.name)
        s3.upload_file(str(work / name), bucket, key)


def answer_like_the_endpoint(endpoint: str, dialogues: list[str], work: Path) -> None:
    """Do what a created endpoint's container would, here: unpack its model.tar.gz from S3, load it with the
    inference handler, answer each request `invoke` will send for `dialogues`, and queue those answers where
    the fake SageMaker runtime returns them from (moto's endpoint-results API), so `invoke` reads real summaries."""
    import boto3
    import requests

    from dialogsum_lab import endpoint_handler as handler
    from dialogsum_lab.sagemaker_serve import request_bodies

    sm, s3 = boto3.client("sagemaker"), boto3.client("s3")
    config = sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    model = sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"][0]["ModelName"]
    uri = sm.describe_model(ModelName=model)["PrimaryContainer"]["ModelDataUrl"]
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    s3.download_file(bucket, key, str(work / "model.tar.gz"))
    with tarfile.open(work / "model.tar.gz") as tar:
        unpack_archive(tar, work / "model", f"s3://{bucket}/{key}")
    served = handler.model_fn(str(work / "model"))
    answers = [handler.output_fn(handler.predict_fn(handler.input_fn(body, handler.JSON), served), handler.JSON)
               for body in request_bodies(dialogues)]
    requests.post("http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results", timeout=10, json={
        "region": sm.meta.region_name, "results": [{"Body": body, "ContentType": kind} for body, kind in answers]})
