"""SageMaker training jobs, from outside: launch, status, logs, download.

The SageMaker SDK 3 (`ModelTrainer`, an optional extra) ships the project as a wheel and starts
`dialogsum-lab train` with the job's hyperparameters; the SDK is imported only when a job is launched.
What the job finds inside its container is `job_env.py`; a fake AWS to run all of this without an account
is `fake_aws.py`.
"""

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from dialogsum_lab.config import DEFAULT_METHOD
from dialogsum_lab.errors import UserError
from dialogsum_lab.files import unpack_archive
from dialogsum_lab.job_env import CHECKPOINTS, TENSORBOARD_DIR
from dialogsum_lab.runs import RunLayout, share_files

# GPUs per instance for the types the lab uses; others count as one (pass --instance-count for several nodes).
GPUS_PER_INSTANCE = {
    "ml.g4dn.xlarge": 1, "ml.g4dn.12xlarge": 4, "ml.g5.xlarge": 1, "ml.g5.2xlarge": 1, "ml.g5.4xlarge": 1,
    "ml.g5.8xlarge": 1, "ml.g5.12xlarge": 4, "ml.g5.24xlarge": 4, "ml.g5.48xlarge": 8, "ml.g6.xlarge": 1,
    "ml.g6.12xlarge": 4, "ml.g6.48xlarge": 8, "ml.p3.2xlarge": 1, "ml.p3.8xlarge": 4, "ml.p3.16xlarge": 8,
    "ml.p4d.24xlarge": 8, "ml.p5.48xlarge": 8,
}
# The newest PyTorch training image the SageMaker SDK 3.27 knows (its image_uris config); --image-uri overrides.
PYTORCH_IMAGE = {"version": "2.10.0", "py_version": "py313"}
ENTRY_SCRIPT = "train_entry.py"
SDK_MISSING = ("SageMaker jobs need the SageMaker SDK, an optional extra (about 1 GB): "
               "pip install -e '.[sagemaker]' (it brings moto too, the fake AWS notebook 06 runs on offline)")
# The tested versions of that extra, as `make test` installs them (in a source checkout).
EXTRA_REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements-sagemaker.txt"
PRICING_PAGE = "https://aws.amazon.com/sagemaker/pricing/"  # per region and instance type; no price is typed here


def missing_extra() -> list[str]:
    """The modules of the SageMaker extra this Python lacks (notebook 06 installs them in its first cell)."""
    import importlib.util

    return [name for name in ("boto3", "sagemaker", "moto") if importlib.util.find_spec(name) is None]


def billing(spec: "JobSpec") -> dict:
    """What a job may bill before it starts: instances, spot or not, its time limit and so the most instance-hours."""
    hours = spec.max_run_s / 3600
    return {"instance": spec.instance_type, "count": spec.instance_count, "spot": spec.spot,
            "time limit (h)": round(hours, 2), "most billable instance-hours": round(spec.instance_count * hours, 2),
            "price per hour": f"see {PRICING_PAGE} (region {spec.region})"}


@dataclass(frozen=True)
class JobSpec:
    """Everything a training job is made of, decided before any AWS call."""

    name: str  # unique per launch; SageMaker appends its own timestamp to make the job's name
    image: str
    instance_type: str
    instance_count: int
    processes_per_instance: int
    hyperparameters: dict[str, str]
    channels: dict[str, str]  # channel name -> S3 URI, or a local folder the SDK uploads
    role: str
    bucket: str
    prefix: str
    region: str
    spot: bool
    max_run_s: int
    max_wait_s: int | None
    files: tuple[str, ...] = ()  # local files shipped beside the entry script (a preset .yaml of one's own)

    @property
    def distributed(self) -> bool:
        return self.instance_count * self.processes_per_instance > 1

    @property
    def checkpoint_s3_uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}/checkpoints/{self.name}"

    @property
    def tensorboard_s3_uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}/tensorboard/{self.name}"

    @property
    def output_s3_uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}/output"


def job_spec(settings: dict[str, str], *, instance_type: str, role: str, bucket: str, region: str,
             channels: dict[str, str], instance_count: int = 1, spot: bool = False, max_run_s: int = 24 * 3600,
             max_wait_s: int | None = None, image_uri: str | None = None, prefix: str = "dialogsum-lab",
             name: str | None = None) -> JobSpec:
    """The job for `dialogsum-lab train` with `settings` (its options, as strings), on SageMaker.

    A pure function: everything is decided here and nothing is called, so it is tested field by field.
    Spot jobs keep checkpoints in S3 (a reclaimed job resumes from them) and wait at most `max_wait_s`.
    """
    if instance_count < 1:
        raise UserError(f"--instance-count must be at least 1 (got {instance_count}).")
    if spot and max_wait_s is not None and max_wait_s < max_run_s:
        raise UserError(f"--max-wait ({max_wait_s} s) must be at least --max-run ({max_run_s} s) for spot jobs.")
    method = settings.get("method", DEFAULT_METHOD).replace("_", "-")
    preset = Path(settings.get("config", "lab"))
    files = (str(preset),) if preset.suffix in (".yaml", ".yml") else ()
    if files:  # the container sees the file beside the entry script
        settings = settings | {"config": preset.name}
    return JobSpec(
        name=name or f"dialogsum-{method}-{time.strftime('%Y%m%d-%H%M%S')}",
        image=image_uri or _pytorch_image(region, instance_type),
        instance_type=instance_type, instance_count=instance_count,
        processes_per_instance=GPUS_PER_INSTANCE.get(instance_type, 1),
        hyperparameters=dict(settings), channels=dict(channels), role=role, bucket=bucket, prefix=prefix,
        region=region, spot=spot, max_run_s=max_run_s, max_wait_s=(max_wait_s or 2 * max_run_s) if spot else None,
        files=files)


def data_channels(source: str, folder: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(channels, hyperparameters) that bring `source` to the job: an S3 prefix as the train channel; a Hub id
    as `--data` (the container downloads it); local data (a file, a folder, `sample`) checked, written as one
    JSON Lines file per split into `folder`, and uploaded as the train channel."""
    from dialogsum_lab.data import is_hub_id, load_dialogsum
    from dialogsum_lab.runs import write_jsonl

    if source.startswith("s3://"):
        return {"train": source}, {}
    if is_hub_id(source):
        return {}, {"data": source}
    for split, rows in load_dialogsum(source).items():
        write_jsonl(folder / f"{split}.jsonl", [{"id": r["id"], "dialogue": r["dialogue"],
                                                 **{f"summary{i}": s for i, s in enumerate(r["references"], 1)},
                                                 **{f"topic{i}": t for i, t in enumerate(r["topics"], 1)}}
                                                for r in rows])
    return {"train": str(folder)}, {}


def session_defaults(region: str | None, role: str | None, bucket: str | None):
    """(SageMaker session, role, bucket): from the arguments, else the environment (AWS_DEFAULT_REGION,
    SAGEMAKER_ROLE), else what the SageMaker Studio session provides (its execution role, default bucket)."""
    import boto3
    from sagemaker.core.helper.session_helper import Session, get_execution_role

    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    session = Session(boto_session=boto3.Session(region_name=region), default_bucket=bucket)
    role = role or os.environ.get("SAGEMAKER_ROLE") or get_execution_role(session)
    return session, role, bucket or session.default_bucket()


def _pytorch_image(region: str, instance_type: str) -> str:
    from sagemaker.core import image_uris

    return image_uris.retrieve("pytorch", region=region, instance_type=instance_type, image_scope="training",
                               **PYTORCH_IMAGE)


def launch(spec: JobSpec, session, wait: bool = True) -> str:
    """Ship the project as a wheel with an entry script, create the job, and return its name."""
    from sagemaker.core.training.configs import (
        CheckpointConfig,
        Compute,
        InputData,
        OutputDataConfig,
        SourceCode,
        StoppingCondition,
        TensorBoardOutputConfig,
    )
    from sagemaker.train import ModelTrainer
    from sagemaker.train.distributed import Torchrun

    with tempfile.TemporaryDirectory(prefix="dialogsum-job-") as code:
        wheel = build_wheel(Path(code))
        for file in spec.files:
            shutil.copy(file, code)
        (Path(code) / "requirements.txt").write_text(f"./{wheel.name}\n")  # installed before the entry script
        (Path(code) / ENTRY_SCRIPT).write_text(
            '"""dialogsum-lab train, with the job\'s hyperparameters as options."""\nimport sys\n\n'
            "from dialogsum_lab.cli import main\n\nsys.exit(main(['train', *sys.argv[1:]]))\n")
        trainer = ModelTrainer(
            sagemaker_session=session, role=spec.role, base_job_name=spec.name, training_image=spec.image,
            source_code=SourceCode(source_dir=code, requirements="requirements.txt", entry_script=ENTRY_SCRIPT),
            compute=Compute(instance_type=spec.instance_type, instance_count=spec.instance_count,
                            enable_managed_spot_training=spec.spot),
            distributed=Torchrun(process_count_per_node=spec.processes_per_instance) if spec.distributed else None,
            stopping_condition=StoppingCondition(max_runtime_in_seconds=spec.max_run_s,
                                                 max_wait_time_in_seconds=spec.max_wait_s),
            checkpoint_config=CheckpointConfig(s3_uri=spec.checkpoint_s3_uri, local_path=str(CHECKPOINTS)),
            output_data_config=OutputDataConfig(s3_output_path=spec.output_s3_uri),
            hyperparameters=spec.hyperparameters, environment={"TENSORBOARD_LOGGING_DIR": TENSORBOARD_DIR})
        trainer = trainer.with_tensorboard_output_config(
            TensorBoardOutputConfig(s3_output_path=spec.tensorboard_s3_uri, local_path=TENSORBOARD_DIR))
        channels = [InputData(channel_name=name, data_source=source) for name, source in spec.channels.items()]
        trainer.train(input_data_config=channels, wait=wait, logs=wait)
        return trainer._latest_training_job.training_job_name


def build_wheel(folder: Path) -> Path:
    """The project as a wheel: presets and sample data included, so the container needs nothing else of it."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        raise UserError("launching a job ships the project as a wheel, built from its source checkout; run this "
                        "from a clone of dialogsum-lab (pip install -e '.[sagemaker]').")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(folder), str(root)], check=True, capture_output=True)
    return next(folder.glob("dialogsum_lab-*.whl"))


def status(job: str, sagemaker_client) -> dict:
    """The job's state, as `describe_training_job` tells it, in a few fields."""
    d = _describe(job, sagemaker_client)
    return {"job": job, "status": d["TrainingJobStatus"], "secondary_status": d.get("SecondaryStatus"),
            "failure_reason": d.get("FailureReason"), "billable_seconds": d.get("BillableTimeInSeconds"),
            "model_artifacts": d.get("ModelArtifacts", {}).get("S3ModelArtifacts")}


def logs(job: str, logs_client) -> list[str]:
    """The container's log lines so far (CloudWatch, /aws/sagemaker/TrainingJobs)."""
    group = "/aws/sagemaker/TrainingJobs"
    streams = logs_client.describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{job}/")["logStreams"]
    return [event["message"] for stream in streams
            for event in logs_client.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"],
                                                    startFromHead=True)["events"]]


def download(job: str, out: Path, sagemaker_client, s3_client) -> Path:
    """A finished job's results as a run folder that `evaluate` and `compare` take: output.tar.gz (settings,
    metrics, loss curve) unpacked into `out`, model.tar.gz into `out/model`."""
    d = _describe(job, sagemaker_client)
    if d["TrainingJobStatus"] != "Completed":
        raise UserError(f"job {job} is {d['TrainingJobStatus']}, not Completed: nothing to download yet "
                        f"(dialogsum-lab sagemaker status {job}).")
    layout = RunLayout.of(out)
    for (bucket, key), folder in zip(artifacts(d).values(), (layout.model, layout.root), strict=True):
        with tempfile.TemporaryFile() as archive:
            s3_client.download_fileobj(bucket, key, archive)
            archive.seek(0)
            with _open_archive(archive, key) as tar:
                folder.mkdir(parents=True, exist_ok=True)
                unpack_archive(tar, folder, f"s3://{bucket}/{key}")
    share_files(out)
    return out


def _open_archive(stream, key: str) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=stream)
    except tarfile.TarError as err:
        raise UserError(f"{key} is not a readable tar archive ({err}): the job's upload is damaged.") from err


def artifacts(description: dict) -> dict[str, tuple[str, str]]:
    """(bucket, key) of what a job leaves in S3: model.tar.gz (SM_MODEL_DIR), output.tar.gz (SM_OUTPUT_DATA_DIR)."""
    model = description["ModelArtifacts"]["S3ModelArtifacts"].removeprefix("s3://")
    folder = model.rsplit("/", 1)[0]
    return {name: tuple(f"{folder}/{name}".split("/", 1)) for name in ("model.tar.gz", "output.tar.gz")}


def _describe(job: str, sagemaker_client) -> dict:
    try:
        return sagemaker_client.describe_training_job(TrainingJobName=job)
    except sagemaker_client.exceptions.ClientError as err:
        raise UserError(f"no training job {job} here ({err.response['Error']['Message']}). Check the name and the "
                        "region (--region or AWS_DEFAULT_REGION).") from err
