"""SageMaker real-time endpoints: the inference handler run for real on a trained run, and deploy / invoke /
undeploy against a fake AWS (moto), checked field by field. moto's endpoints never run a container; the
answers `invoke` reads come from the handler itself (`fake_aws.answer_like_the_endpoint`)."""

import base64
import importlib.util
import json
import tarfile
from pathlib import Path

import pytest
from helpers import launched, one_line_error, upload_job_results

from dialogsum_lab import endpoint_handler as handler
from dialogsum_lab.cli import main
from dialogsum_lab.data import load_dialogsum
from dialogsum_lab.fake_aws import answer_like_the_endpoint
from dialogsum_lab.files import unpack_archive
from dialogsum_lab.generation import generation_config, summarize
from dialogsum_lab.modeling import load_trained
from dialogsum_lab.sagemaker_serve import endpoint_spec, serving_archive

pytestmark = pytest.mark.slow

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
DIALOGUES = ["#Person1#: Could you water my plants on Friday?\n#Person2#: Sure, where is the key?",
             "#Person1#: Two coffees, please.\n#Person2#: That's six dollars.\n#Person1#: Here you are."]


@pytest.fixture(scope="module")
def unpacked(lora_run, tmp_path_factory) -> Path:
    """The shared toy LoRA run packed as an endpoint's model.tar.gz, then unpacked as the container would."""
    work = tmp_path_factory.mktemp("endpoint")
    archive = serving_archive(lora_run, work)
    with tarfile.open(archive) as tar:
        unpack_archive(tar, work / "model", str(archive))
    return work / "model"


@pytest.fixture(scope="module")
def script(unpacked):
    """The archive's code/inference.py, imported as the serving container imports it."""
    spec = importlib.util.spec_from_file_location("inference", unpacked / "code" / "inference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_archive_holds_settings_model_and_code_but_no_checkpoints(unpacked):
    files = sorted(str(p.relative_to(unpacked)) for p in unpacked.rglob("*") if p.is_file())
    assert {"config.yaml", "train_metrics.json", "model/adapter_model.safetensors", "model/tokenizer.json",
            "code/inference.py", "code/requirements.txt"} <= set(files)
    wheel = next(f for f in files if f.startswith("code/dialogsum_lab-") and f.endswith(".whl"))
    assert (unpacked / "code" / "requirements.txt").read_text() == f"/opt/ml/model/{wheel}\n"
    assert not [f for f in files if "checkpoint" in f or f.endswith(".bin")]


def test_the_four_functions_summarise_as_the_package_does(unpacked, script, lora_run):
    served = script.model_fn(str(unpacked))
    model, tokenizer, _ = load_trained(str(lora_run), device="cpu")
    expected = summarize(model, tokenizer, DIALOGUES, generation_config(model), progress=False)
    many = script.input_fn(json.dumps({"inputs": DIALOGUES}).encode(), "application/json")
    body, kind = script.output_fn(script.predict_fn(many, served), "application/json")
    assert kind == "application/json" and json.loads(body) == {"summaries": expected}
    one = script.input_fn(json.dumps({"inputs": DIALOGUES[1], "parameters": {"max_new_tokens": 5}}), "application/json")
    answer = json.loads(script.output_fn(script.predict_fn(one, served), "*/*")[0])
    assert set(answer) == {"summary"} and len(tokenizer(answer["summary"]).input_ids) <= 6


@pytest.mark.parametrize(("body", "content_type", "status", "says"), [
    (b"{not json", "application/json", 400, "not JSON"),
    (b'{"inputs": []}', "application/json", 400, "non-empty list"),
    (b'{"dialogue": "hi"}', "application/json", 400, '{"inputs"'),
    (b'{"inputs": "  "}', "application/json", 400, "dialogue 0 is empty"),
    (b"a,b", "text/csv", 415, "send application/json"),
    (json.dumps({"inputs": ["#Person1#: hi"] * (handler.MAX_DIALOGUES + 1)}).encode(), "application/json", 413,
     f"at most {handler.MAX_DIALOGUES}"),
    (json.dumps({"inputs": "a" * (handler.MAX_DIALOGUE_CHARACTERS + 1)}).encode(), "application/json", 413,
     "characters"),
    (b" " * (handler.MAX_BODY_BYTES + 1), "application/json", 413, "bytes"),
    (b'{"inputs": "hi", "parameters": {"num_beams": 99}}', "application/json", 400, "num_beams must be"),
    (b'{"inputs": "hi", "parameters": {"temperature": 2}}', "application/json", 400, "parameters"),
    (b'{"inputs": "\xff\xfe"}', "application/json", 400, "not JSON"),
])
def test_bad_requests_are_refused_with_a_4xx_and_one_line(body, content_type, status, says):
    with pytest.raises(handler.RequestRefused) as refused:
        handler.input_fn(body, content_type)
    assert refused.value.status_code == status and says in refused.value.message and "\n" not in str(refused.value)


def test_an_answer_in_another_format_is_refused():
    with pytest.raises(handler.RequestRefused) as refused:
        handler.output_fn({"summary": "x"}, "text/csv")
    assert refused.value.status_code == 406


def test_the_endpoint_is_decided_field_by_field():
    spec = endpoint_spec("lora", instance_type="ml.g5.xlarge", role=ROLE, bucket="b", region="eu-west-1",
                         name="my-endpoint")
    assert spec.image == "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-inference:2.6.0-gpu-py312"
    assert (spec.model_name, spec.config_name) == ("my-endpoint-model", "my-endpoint-config")
    assert spec.model_data == "s3://b/dialogsum-lab/endpoints/my-endpoint/model.tar.gz"
    assert spec.environment == {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                                "SAGEMAKER_REGION": "eu-west-1", "SAGEMAKER_CONTAINER_LOG_LEVEL": "20"}
    cpu = endpoint_spec("full", instance_type="ml.m5.xlarge", role=ROLE, bucket="b", region="us-east-1")
    assert cpu.image.endswith("pytorch-inference:2.6.0-cpu-py312") and cpu.name.startswith("dialogsum-full-")


def recorded_requests(aws) -> list[dict]:
    """What moto's SageMaker runtime received: each request's Accept header and body."""
    from moto.sagemakerruntime.models import sagemakerruntime_backends

    results = sagemakerruntime_backends["123456789012"]["us-east-1"].results
    return [json.loads(base64.b64decode(key)) for calls in results.values() for key in calls]


def test_deploy_invoke_undeploy_on_the_fake_aws(aws, lora_run, tmp_path, capsys):
    assert main(["sagemaker", "deploy", str(lora_run), "--name", "lab-endpoint", "--role", ROLE,
                 "--bucket", "labbucket"]) == 0
    assert "billed per instance-hour until `dialogsum-lab sagemaker undeploy lab-endpoint`" in capsys.readouterr().out
    sm = aws.client("sagemaker")
    model = sm.describe_model(ModelName="lab-endpoint-model")
    container = model["PrimaryContainer"]
    assert model["ExecutionRoleArn"] == ROLE and container["Image"].endswith("pytorch-inference:2.6.0-cpu-py312")
    assert container["ModelDataUrl"] == "s3://labbucket/dialogsum-lab/endpoints/lab-endpoint/model.tar.gz"
    assert container["Environment"] == endpoint_spec("lora", instance_type="ml.m5.xlarge", role=ROLE, bucket="b",
                                                     region="us-east-1", name="lab-endpoint").environment
    variant = sm.describe_endpoint_config(EndpointConfigName="lab-endpoint-config")["ProductionVariants"][0]
    assert (variant["ModelName"], variant["InstanceType"], variant["InitialInstanceCount"]) == (
        "lab-endpoint-model", "ml.m5.xlarge", 1)
    assert sm.describe_endpoint(EndpointName="lab-endpoint")["EndpointStatus"] == "InService"
    aws.client("s3").head_object(Bucket="labbucket", Key="dialogsum-lab/endpoints/lab-endpoint/model.tar.gz")

    answer_like_the_endpoint("lab-endpoint", DIALOGUES, tmp_path)
    assert main(["sagemaker", "invoke", "lab-endpoint", "--dialogue", DIALOGUES[0].replace("\n", "\\n")]) == 0
    printed = capsys.readouterr().out
    model_, tokenizer, _ = load_trained(str(lora_run), device="cpu")
    expected = summarize(model_, tokenizer, DIALOGUES[:1], generation_config(model_), progress=False)
    assert printed.startswith(f"0: {expected[0]}")
    sent = recorded_requests(aws)[0]
    assert sent["Accept"] == "application/json" and json.loads(sent["Body"]) == {"inputs": DIALOGUES[:1]}
    from_file = list(load_dialogsum("sample")["test"]["dialogue"])[:3]
    (tmp_path / "again").mkdir()
    answer_like_the_endpoint("lab-endpoint", from_file, tmp_path / "again")
    assert main(["sagemaker", "invoke", "lab-endpoint", "--data", "sample", "--limit", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines if line[:1].isdigit() and ": " in line][:3] == ["0", "1", "2"]
    assert json.loads(recorded_requests(aws)[-1]["Body"]) == {"inputs": from_file}

    assert main(["sagemaker", "undeploy", "lab-endpoint"]) == 0
    assert "endpoint lab-endpoint, endpoint config lab-endpoint-config, model lab-endpoint-model" in \
        capsys.readouterr().out
    assert not sm.list_endpoints()["Endpoints"] and not sm.list_models()["Models"]
    assert not sm.list_endpoint_configs()["EndpointConfigs"]
    assert main(["sagemaker", "undeploy", "lab-endpoint"]) == 2 and "no endpoint lab-endpoint" in one_line_error(capsys)


def test_a_finished_training_job_deploys_by_name(aws, lora_run, tmp_path, capsys):
    assert main(["sagemaker", "launch", "--config", "smoke", "--no-wait", "--role", ROLE, "--bucket", "labbucket",
                 "--data", "knkarthick/dialogsum"]) == 0
    job = launched(capsys)
    sm = aws.client("sagemaker")
    upload_job_results(aws.client("s3"), sm.describe_training_job(TrainingJobName=job), lora_run, tmp_path)
    assert main(["sagemaker", "deploy", job, "--name", "from-a-job", "--role", ROLE, "--bucket", "labbucket",
                 "--no-wait"]) == 0
    with tarfile.open(fileobj=aws.client("s3").get_object(
            Bucket="labbucket", Key="dialogsum-lab/endpoints/from-a-job/model.tar.gz")["Body"]) as tar:
        names = tar.getnames()
    assert "config.yaml" in names and "model/adapter_model.safetensors" in names and "code/inference.py" in names
    assert main(["sagemaker", "deploy", str(tmp_path / "no-such-run"), "--role", ROLE, "--bucket", "labbucket"]) == 2
    assert "is not a run folder" in one_line_error(capsys)
