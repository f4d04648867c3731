"""SageMaker real-time endpoints, from outside: deploy a run (or a finished training job), call it, take it down.

`serving_archive` packs a run as the `model.tar.gz` SageMaker's PyTorch inference image expects: the run's
settings and model at the top (what `endpoint_handler.model_fn` loads) and `code/` with the inference script,
the project as a wheel and a requirements file that installs it when the container starts. `endpoint_spec`
decides everything else before any AWS call (names, the image for the region and instance, the container's
environment); `deploy` creates the model, the endpoint configuration and the endpoint through the SageMaker
API. An endpoint bills by the hour while it exists, busy or idle: `undeploy` removes all three.
"""

import json
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from dialogsum_lab.config import TrainConfig
from dialogsum_lab.data import is_hub_id
from dialogsum_lab.endpoint_handler import BUNDLED_BASE, JSON, MAX_DIALOGUES
from dialogsum_lab.errors import UserError
from dialogsum_lab.files import own_file
from dialogsum_lab.methods import PEFT_CONFIGS
from dialogsum_lab.modeling import model_note
from dialogsum_lab.runs import RunLayout
from dialogsum_lab.sagemaker_launch import PRICING_PAGE, build_wheel

INFERENCE_SCRIPT = "inference.py"
CODE_DIR = "/opt/ml/model/code"  # where the container finds code/ of the unpacked model.tar.gz
# The newest PyTorch inference image the SageMaker SDK 3.27 knows (its image_uris config); --image-uri overrides.
PYTORCH_INFERENCE_IMAGE = {"version": "2.6.0", "py_version": "py312"}
SERVED_FILES = (RunLayout.CONFIG, RunLayout.TRAIN_METRICS, RunLayout.CARD, RunLayout.TRAINING_SET)
MODEL_FILES_LEFT_OUT = ("training_args.bin", "README.md")  # a pickle the server would never read; peft's template
REQUEST_DIALOGUES = 16  # dialogues per invoke_endpoint call (a call must answer within 60 seconds)


@dataclass(frozen=True)
class EndpointSpec:
    """Everything an endpoint is made of, decided before any AWS call."""

    name: str
    image: str
    instance_type: str
    instance_count: int
    role: str
    model_data: str  # s3:// URI of the model.tar.gz
    region: str
    environment: dict[str, str]

    @property
    def model_name(self) -> str:
        return f"{self.name}-model"

    @property
    def config_name(self) -> str:
        return f"{self.name}-config"


def endpoint_spec(method: str, *, instance_type: str, role: str, bucket: str, region: str, instance_count: int = 1,
                  prefix: str = "dialogsum-lab", image_uri: str | None = None, name: str | None = None) -> EndpointSpec:
    """The endpoint for a run trained with `method`: a pure function, tested field by field."""
    if instance_count < 1:
        raise UserError(f"--instance-count must be at least 1 (got {instance_count}).")
    name = name or f"dialogsum-{method.replace('_', '-')}-{time.strftime('%Y%m%d-%H%M%S')}"
    if len(name) > 50 or not name.replace("-", "").isalnum():
        raise UserError(f"endpoint name {name!r}: use at most 50 letters, digits and hyphens (SageMaker's rule, "
                        "with room for the -model and -config it adds).")
    return EndpointSpec(
        name=name, image=image_uri or _inference_image(region, instance_type), instance_type=instance_type,
        instance_count=instance_count, role=role, model_data=f"s3://{bucket}/{prefix}/endpoints/{name}/model.tar.gz",
        region=region, environment={"SAGEMAKER_PROGRAM": INFERENCE_SCRIPT, "SAGEMAKER_SUBMIT_DIRECTORY": CODE_DIR,
                                    "SAGEMAKER_REGION": region, "SAGEMAKER_CONTAINER_LOG_LEVEL": "20"})


def _inference_image(region: str, instance_type: str) -> str:
    from sagemaker.core import image_uris

    return image_uris.retrieve("pytorch", region=region, instance_type=instance_type, image_scope="inference",
                               **PYTORCH_INFERENCE_IMAGE)


def billing(spec: EndpointSpec) -> dict:
    """What an endpoint bills: its instances for every hour it exists, until `undeploy`."""
    return {"instance": spec.instance_type, "count": spec.instance_count,
            "billed": "per instance-hour while the endpoint exists, idle or not, until undeploy",
            "price per hour": f"see {PRICING_PAGE} (real-time inference, region {spec.region})"}


def serving_archive(run: Path, out: Path) -> Path:
    """`out/model.tar.gz` for `run`: settings and model on top, `code/` with the inference script and the wheel."""
    layout = RunLayout.of(run)
    if not (layout.finished() and layout.model.is_dir()):
        raise UserError(f"{run} is not a finished training run (no train_metrics.json or model/): finish it before "
                        "deploying it.")
    config = TrainConfig.load(layout.file(RunLayout.CONFIG))
    for path in [layout.file(n) for n in SERVED_FILES if layout.file(n).exists()] + list(layout.model.rglob("*")):
        if path.is_symlink() or path.is_file():  # what goes into the archive is the run's own, no link out of it
            own_file(path, run)
    with tempfile.TemporaryDirectory(prefix="dialogsum-code-") as code:
        wheel = build_wheel(Path(code))
        (Path(code) / "requirements.txt").write_text(f"{CODE_DIR}/{wheel.name}\n")
        (Path(code) / INFERENCE_SCRIPT).write_text(
            '"""The endpoint\'s handler: dialogsum-lab\'s, installed from the wheel beside this file."""\n'
            "from dialogsum_lab.endpoint_handler import input_fn, model_fn, output_fn, predict_fn  # noqa: F401\n")
        archive = out / "model.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for name in SERVED_FILES:
                if layout.file(name).is_file():
                    tar.add(layout.file(name), arcname=name)
            tar.add(layout.model, arcname="model", filter=_leave_out)
            base = _local_base(config)
            if base:
                tar.add(base, arcname=BUNDLED_BASE)
            tar.add(code, arcname="code")
    return archive


def _leave_out(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
    return None if Path(member.name).name in MODEL_FILES_LEFT_OUT else member


def _local_base(config: TrainConfig) -> Path | None:
    """An adapter's base model that the container cannot fetch by name: a local folder, packed beside it."""
    if config.method not in PEFT_CONFIGS or is_hub_id(config.model) or model_note(config.model):
        return None  # a full model stands alone; a Hub base is downloaded; the project's own ship in the wheel
    return Path(config.model)


def deploy(spec: EndpointSpec, archive: Path, sagemaker_client, s3_client, wait: bool = True) -> str:
    """Upload the archive, create model, endpoint configuration and endpoint; with `wait`, until it serves."""
    bucket, key = spec.model_data.removeprefix("s3://").split("/", 1)
    s3_client.upload_file(str(archive), bucket, key)
    sagemaker_client.create_model(
        ModelName=spec.model_name, ExecutionRoleArn=spec.role,
        PrimaryContainer={"Image": spec.image, "ModelDataUrl": spec.model_data, "Environment": spec.environment})
    sagemaker_client.create_endpoint_config(
        EndpointConfigName=spec.config_name,
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": spec.model_name,
                             "InitialInstanceCount": spec.instance_count, "InstanceType": spec.instance_type}])
    sagemaker_client.create_endpoint(EndpointName=spec.name, EndpointConfigName=spec.config_name)
    if wait:
        from botocore.exceptions import WaiterError

        try:
            sagemaker_client.get_waiter("endpoint_in_service").wait(EndpointName=spec.name)
        except WaiterError as err:
            reason = sagemaker_client.describe_endpoint(EndpointName=spec.name).get("FailureReason", err)
            raise UserError(f"endpoint {spec.name} did not come into service ({reason}). It may still bill: "
                            f"dialogsum-lab sagemaker undeploy {spec.name}") from err
    return spec.name


def request_bodies(dialogues: list[str], per_request: int = REQUEST_DIALOGUES) -> list[bytes]:
    """The JSON bodies that carry `dialogues` to an endpoint, `per_request` at a time, in order."""
    if not dialogues:
        raise UserError("no dialogues to send: pass --dialogue TEXT or --data FILE with dialogues in it.")
    per_request = max(1, min(per_request, MAX_DIALOGUES))
    return [json.dumps({"inputs": dialogues[i:i + per_request]}, ensure_ascii=False).encode()
            for i in range(0, len(dialogues), per_request)]


def invoke(endpoint: str, dialogues: list[str], runtime_client, per_request: int = REQUEST_DIALOGUES) -> list[str]:
    """Summaries of `dialogues` from a deployed endpoint, in order."""
    from botocore.exceptions import ClientError

    summaries = []
    for body in request_bodies(dialogues, per_request):
        try:
            answer = runtime_client.invoke_endpoint(EndpointName=endpoint, ContentType=JSON, Accept=JSON, Body=body)
        except ClientError as err:
            error = err.response.get("Error", {})
            raise UserError(f"endpoint {endpoint} refused the request: {error.get('Message', err)} "
                            f"(status {err.response.get('OriginalStatusCode', error.get('Code'))}).") from err
        summaries += _summaries(answer["Body"].read(), endpoint)
    return summaries


def _summaries(body: bytes, endpoint: str) -> list[str]:
    try:
        answer = json.loads(body)
        if isinstance(answer["summaries"], list) and all(isinstance(s, str) for s in answer["summaries"]):
            return answer["summaries"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        pass
    raise UserError(f"endpoint {endpoint} answered {body[:200]!r}, not dialogsum-lab's JSON "
                    '({"summaries": [...]}): is it an endpoint this project deployed?')


def undeploy(endpoint: str, sagemaker_client) -> list[str]:
    """Delete the endpoint, its configuration and its models; returns what was deleted."""
    try:
        config = sagemaker_client.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    except sagemaker_client.exceptions.ClientError as err:
        raise UserError(f"no endpoint {endpoint} here ({err.response['Error']['Message']}). Check the name and the "
                        "region (--region or AWS_DEFAULT_REGION).") from err
    variants = sagemaker_client.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
    sagemaker_client.delete_endpoint(EndpointName=endpoint)
    sagemaker_client.delete_endpoint_config(EndpointConfigName=config)
    models = sorted({v["ModelName"] for v in variants})
    for model in models:
        sagemaker_client.delete_model(ModelName=model)
    return [f"endpoint {endpoint}", f"endpoint config {config}", *(f"model {m}" for m in models)]


def run_of(source: str, work: Path, sagemaker_client, s3_client) -> Path:
    """`source` as a run folder: a local run as it is, a finished training job's name downloaded into `work`."""
    if Path(source).is_dir():
        return Path(source)
    if "/" in source:  # job names have no slashes: this was meant as a folder
        raise UserError(f"{source} is not a run folder. Pass a training run folder or a training job's name.")
    from dialogsum_lab.sagemaker_launch import download

    folder = work / "run"
    download(source, folder, sagemaker_client, s3_client)
    return folder
