"""Shared fixtures: one tiny model per test session, built into a temporary cache (never the user's)."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session", autouse=True)
def tiny_cache(tmp_path_factory):
    """Point the project cache at a session folder so tests build tiny-random-t5 once, offline."""
    path = tmp_path_factory.mktemp("cache")
    old = os.environ.get("DIALOGSUM_LAB_CACHE")
    os.environ["DIALOGSUM_LAB_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("DIALOGSUM_LAB_CACHE")
    else:
        os.environ["DIALOGSUM_LAB_CACHE"] = old


@pytest.fixture(scope="session")
def tiny(tiny_cache):
    """(model, tokenizer) of tiny-random-t5 on the CPU in fp32."""
    from dialogsum_lab.modeling import TINY_MODEL, load_model_and_tokenizer

    return load_model_and_tokenizer(TINY_MODEL, dtype="float32", device="cpu")


@pytest.fixture(scope="session")
def lora_run(tiny_cache, tmp_path_factory):
    """One toy LoRA run for the tests that read one: 8 steps, checkpoints at 4 and 8, an eval loss."""
    from helpers import quick

    from dialogsum_lab.training import train

    return train(quick("lora", save_strategy="steps", save_steps=4, eval_strategy="steps"),
                 tmp_path_factory.mktemp("runs") / "lora")


@pytest.fixture
def aws(monkeypatch):
    """moto's fake S3, SageMaker (and its runtime) and CloudWatch Logs, with fake credentials and a bucket."""
    import moto  # the sagemaker extra, which make test installs: a missing extra fails here, never skips
    import sagemaker  # noqa: F401
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "SAGEMAKER_VALIDATE_ROLE": "false"}.items():
        monkeypatch.setenv(key, value)
    with moto.mock_aws():
        import boto3

        boto3.client("s3").create_bucket(Bucket="labbucket")
        yield boto3


@pytest.fixture(scope="session")
def rated_runs(tiny_cache, tmp_path_factory):
    """Two toy runs evaluated on 12 sample dialogues, for the review app, under names no page text contains."""
    from helpers import quick

    from dialogsum_lab.cli import main
    from dialogsum_lab.training import train

    root = tmp_path_factory.mktemp("rated")
    runs = []
    for method, name in (("lora", "sysqx-lora"), ("full", "syskv-full")):
        run = train(quick(method), root / name)
        assert main(["evaluate", str(run), "--limit", "12", "--bootstrap-samples", "20", "--max-new-tokens", "24",
                     "--device", "cpu"]) == 0
        runs.append(run)
    return runs
