"""Data-parallel training on the CPU (gloo), launched by torchrun and by `accelerate launch`: the same losses and
weights as one process, one writer."""

import json
import subprocess
import sys

import pytest

from dialogsum_lab.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def still_model(tmp_path_factory):
    """tiny-random-t5 without dropout, so runs that see the same tokens must give the same losses."""
    from dialogsum_lab.modeling import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer("tiny-random-t5", "float32", "cpu")
    model.config.dropout_rate = 0.0
    path = tmp_path_factory.mktemp("still") / "tiny-no-dropout"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def losses(run) -> list[float]:
    return [h["loss"] for h in json.loads((run / "trainer_state.json").read_text())["log_history"] if "loss" in h]


LAUNCHERS = {
    "torchrun": [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"],
    "accelerate": [sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch", "--multi_gpu",
                   "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"],
}


@pytest.mark.parametrize(("method", "launcher"), [("lora", "torchrun"), ("full", "torchrun"), ("lora", "accelerate")])
def test_two_processes_match_one_process_and_gradient_accumulation(still_model, tmp_path, method, launcher, capsys):
    # 8 dialogues, a global batch of 8: every step sees every dialogue, however the batch is split.
    common = ["train", "--config", "smoke", "--method", method, "--model", str(still_model), "--limit-train", "8",
              "--max-steps", "3",
              "--eval-strategy", "no", "--save-strategy", "no", "--logging-steps", "1", "--device", "cpu",
              "--lora-dropout", "0", "--learning-rate", "1e-3"]  # at the smoke preset's 1e-2 Adam amplifies rounding
    assert main([*common, "--batch-size", "8", "--out", str(tmp_path / "one")]) == 0
    assert main([*common, "--batch-size", "4", "--gradient-accumulation-steps", "2",
                 "--out", str(tmp_path / "accumulated")]) == 0
    capsys.readouterr()
    runs = tmp_path / "runs"
    result = subprocess.run([*LAUNCHERS[launcher], "-m", "dialogsum_lab.cli", *common, "--batch-size", "4",
                             "--out", str(runs / "ddp")], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("Trained") == 1  # one voice

    one, accumulated, ddp = (losses(tmp_path / "one"), losses(tmp_path / "accumulated"), losses(runs / "ddp"))
    assert len(one) == 3 and one == pytest.approx(accumulated, abs=1e-4) and one == pytest.approx(ddp, abs=1e-4)
    metrics = json.loads((runs / "ddp" / "train_metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["weights_identical_across_processes"] is True
    # One set of files, the same as a one-process run writes, and nothing beside it.
    assert sorted(p.name for p in runs.iterdir()) == ["ddp"]
    assert {p.name for p in (runs / "ddp").iterdir()} == {p.name for p in (tmp_path / "one").iterdir()}
    weights = "adapter_model.safetensors" if method == "lora" else "model.safetensors"
    from safetensors.torch import load_file

    a, b = load_file(tmp_path / "one" / "model" / weights), load_file(runs / "ddp" / "model" / weights)
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-4
