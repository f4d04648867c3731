"""Resume compares before it writes: a run is continued only with its own settings and data, may change only its
length and cadence (recorded in its history), reaches the weights an uninterrupted run reaches, and leaves its
earlier evaluations stale, which compare refuses."""

import json
import shutil

import pytest
import torch
from helpers import CHECKPOINTED_TRAIN, one_line_error, quick
from safetensors.torch import load_file

from dialogsum_lab.cli import main
from dialogsum_lab.errors import UserError
from dialogsum_lab.resuming import RESUMABLE, resume
from dialogsum_lab.training import train


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A LoRA run trained 4 steps without a break, checkpointing at 2 and 4."""
    run = tmp_path_factory.mktemp("resume") / "run"
    assert main([*CHECKPOINTED_TRAIN, "--out", str(run)]) == 0
    return run


def interrupted_copy(finished, where):
    """The same run as if it had been stopped after its step-2 checkpoint."""
    run = shutil.copytree(finished, where)
    for name in ("model", "checkpoints/checkpoint-4"):
        shutil.rmtree(run / name)
    for name in ("train_metrics.json", "trainer_state.json", "loss_curve.png"):
        (run / name).unlink()
    return run


@pytest.mark.parametrize(("options", "said"), [
    (["--method", "full"], "method: 'lora' -> 'full'"),
    (["--lora-r", "8"], "lora_r: 4 -> 8"),
    (["--learning-rate", "0.5"], "learning_rate: 0.01 -> 0.5"),
    (["--data", "elsewhere.jsonl", "--seed", "3"], "data: 'sample' -> 'elsewhere.jsonl'; seed: 42 -> 3"),
], ids=["method", "lora-shape", "learning-rate", "data-and-seed"])
def test_resuming_with_settings_that_change_what_trains_is_refused_and_rewrites_nothing(
        finished, tmp_path, capsys, options, said):
    run = interrupted_copy(finished, tmp_path / "run")
    before = {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert main(["train", "--resume", "--out", str(run), *options]) == 2
    message = one_line_error(capsys)
    assert said in message and "start a new run" in message
    assert {p.relative_to(run): p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    assert main(["train", "--resume", "--out", str(run)]) == 0  # still resumable, as it was


def test_data_changed_under_the_same_name_is_refused(tmp_path, capsys):
    from dialogsum_lab.data import load_dialogsum

    train = load_dialogsum("sample")["train"]
    data = tmp_path / "train.jsonl"

    def write(rows):
        data.write_text("".join(json.dumps({"id": i, "dialogue": d, "summary": s}) + "\n" for i, d, s in rows))

    write(zip(train["id"][:10], train["dialogue"][:10], train["summary"][:10], strict=True))
    run = tmp_path / "run"
    assert main([*CHECKPOINTED_TRAIN, "--data", str(data), "--out", str(run)]) == 0
    shutil.rmtree(run / "model")
    (run / "train_metrics.json").unlink()
    write(zip(train["id"][:10], train["dialogue"][10:20], train["summary"][10:20], strict=True))  # same ids
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(run), "--max-steps", "6"]) == 2
    assert "training data of" in (message := one_line_error(capsys)) and "10 of 10 dialogues differ" in message


def test_length_and_cadence_may_change_and_are_recorded(finished, tmp_path):
    assert {"max_steps", "epochs", "save_steps", "logging_steps"} <= set(RESUMABLE)
    run = shutil.copytree(finished, tmp_path / "run")
    assert main(["train", "--resume", "--out", str(run), "--max-steps", "6", "--logging-steps", "3"]) == 0
    history = json.loads((run / "history.json").read_text())
    assert history[-1]["resumed_from"] == "checkpoint-4"
    assert history[-1]["changed"] == {"max_steps": {"from": 4, "to": 6}, "logging_steps": {"from": 2, "to": 3}}
    assert "max_steps: 6" in (run / "config.yaml").read_text()


def test_resume_reaches_the_weights_an_uninterrupted_run_reaches(finished, tmp_path):
    run = interrupted_copy(finished, tmp_path / "run")
    assert main(["train", "--resume", "--out", str(run)]) == 0
    ours, theirs = (load_file(r / "model" / "adapter_model.safetensors") for r in (run, finished))
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_an_evaluation_made_before_more_training_is_stale_and_compare_refuses_it(finished, tmp_path, capsys):
    run = shutil.copytree(finished, tmp_path / "run")
    assert main(["evaluate", str(run), "--limit", "3", "--max-new-tokens", "4", "--bootstrap-samples", "20"]) == 0
    metrics = json.loads((run / "eval-test" / "metrics.json").read_text())
    assert len(metrics["weights_sha256"]) == 16
    assert main(["zero-shot", "--config", "smoke", "--limit", "3", "--max-new-tokens", "4", "--out",
                 str(tmp_path / "zero")]) == 0
    assert main(["train", "--resume", "--out", str(run), "--max-steps", "6"]) == 0
    assert "now score older weights: evaluate again" in capsys.readouterr().out
    assert main(["compare", str(tmp_path / "zero"), str(run), "--out", str(tmp_path / "cmp")]) == 2
    assert "is stale: it scored weights that" in one_line_error(capsys)
    assert main(["evaluate", str(run), "--limit", "3", "--max-new-tokens", "4", "--overwrite"]) == 0
    assert main(["compare", str(tmp_path / "zero"), str(run), "--out", str(tmp_path / "cmp")]) == 0


def test_resume_continues_from_the_checkpoint_step(lora_run, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(lora_run, run)
    assert (run / "checkpoints" / "checkpoint-8").is_dir()
    resume(run, {"max_steps": 12})
    state = json.loads((run / "trainer_state.json").read_text())
    steps = [h["step"] for h in state["log_history"] if "loss" in h]
    assert state["global_step"] == 12
    assert steps == list(range(1, 13))  # 1-8 restored from the checkpoint, 9-12 new: none repeated


def test_resume_needs_a_checkpoint(tmp_path):
    run = train(quick("lora", max_steps=2), tmp_path / "nockpt")
    with pytest.raises(UserError, match="no complete checkpoint to resume from"):
        resume(run)
