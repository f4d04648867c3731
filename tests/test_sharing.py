"""Sharing a run: its model card (read from its own files, valid for the Hub) and `push`, offline.

The upload runs real `huggingface_hub` code against `hub_standin.HubStandIn`, a local stand-in server that
speaks the few Hub endpoints `push` uses, on the LFS upload path (Xet switched off); it is not the Hub (see its
docstring for what it checks).
"""

import re
import shutil
from pathlib import Path

import pytest
import yaml
from helpers import one_line_error, quick
from hub_standin import HubStandIn
from safetensors.torch import load_file, save_file

from dialogsum_lab.cli import main
from dialogsum_lab.errors import UserError
from dialogsum_lab.files import read_json
from dialogsum_lab.model_card import card_metadata, render_card
from dialogsum_lab.runs import RunLayout, write_json

pytestmark = pytest.mark.slow

TOKEN = "hf_standin_secret_0123456789"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A toy LoRA run of this module's own (the shared one is evaluated by other tests): 8 steps, a checkpoint."""
    from dialogsum_lab.training import train

    return train(quick("lora", save_strategy="steps", save_steps=8), tmp_path_factory.mktemp("runs") / "lora")


@pytest.fixture
def run(trained, tmp_path) -> Path:
    """A copy of that run (checkpoints and all), evaluated on 4 test dialogues."""
    copy = shutil.copytree(trained, tmp_path / "lora")
    assert main(["evaluate", str(copy), "--limit", "4", "--bootstrap-samples", "50", "--device", "cpu"]) == 0
    return copy


def front_matter(card: Path) -> dict:
    text = card.read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


def model_index_values(metadata: dict) -> dict[str, float]:
    results = metadata["model-index"][0]["results"]
    return {m["config"]: m["value"] for r in results for m in r["metrics"]}


def test_a_finished_run_carries_a_card_before_and_after_evaluation(trained, run):
    fresh = front_matter(trained / "README.md")  # trained, not evaluated: metadata, no results yet
    assert fresh["library_name"] == "peft" and fresh["pipeline_tag"] == "summarization"
    assert "model-index" not in fresh and "Not evaluated yet" in (trained / "README.md").read_text()
    metadata = front_matter(run / "README.md")
    assert metadata == card_metadata(run / "README.md")  # the Hub's own parser reads the same
    assert {"dialogsum-lab", "lora", "peft", "synthetic"} <= set(metadata["tags"]) and metadata["license"]
    assert "base_model" not in metadata  # tiny-random-t5 is no Hub model: named in the text instead
    scored = read_json(run / "eval-test" / "metrics.json")
    details = {key: round(c["mean"], 4) for key, c in scored["details"].items() if isinstance(c, dict) and c["n"]}
    assert details and model_index_values(metadata) == {f"{v}.{t}": round(c["mean"], 4)
                                                        for v, cells in scored["rouge"].items()
                                                        for t, c in cells.items()} | details
    result = metadata["model-index"][0]["results"][0]
    assert result["dataset"]["split"] == "test" and result["dataset"]["args"]["dialogues"] == 4
    text = (run / "README.md").read_text()
    recorded = read_json(run / "train_metrics.json")
    assert f"| optimiser steps | {recorded['global_step']} " in text and recorded["hardware"] in text
    assert "course_lab (course-comparable)" in text and "Synthetic, not a real summariser" in text


def test_the_card_is_rewritten_when_the_run_is_evaluated_again(run):
    before = model_index_values(front_matter(run / "README.md"))
    assert main(["evaluate", str(run), "--limit", "6", "--bootstrap-samples", "50", "--device", "cpu",
                 "--overwrite"]) == 0
    after = front_matter(run / "README.md")
    assert after["model-index"][0]["results"][0]["dataset"]["args"]["dialogues"] == 6
    rouge = read_json(run / "eval-test" / "metrics.json")["rouge"]
    assert model_index_values(after)["mean_over_references.rouge1"] == round(
        rouge["mean_over_references"]["rouge1"]["mean"], 4)
    assert model_index_values(after) != before


def test_the_cards_loading_code_runs(run, monkeypatch):
    code = re.search(r"```python\n(.*?)```", (run / "README.md").read_text(), re.S).group(1)
    monkeypatch.chdir(run)  # the card names the model folder beside it
    scope = {}
    exec(code, scope)
    assert isinstance(scope["summary"], str) and scope["model"].peft_config["default"].r == 32


def test_push_dry_run_lists_model_card_settings_and_metrics_but_no_checkpoints(run, capsys):
    (run / ".lora.lock").write_text("")
    (run.parent / ".lora.staging").mkdir()
    assert main(["push", str(run), "--repo-id", "someone/lora-test", "--dry-run"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert "adapter_model.safetensors" in listed and "tokenizer.json" in listed and "README.md" in listed
    assert {"run/config.yaml", "run/train_metrics.json", "run/eval-test/metrics.json",
            "run/eval-test/eval_config.yaml"} <= set(listed)
    assert not [f for f in listed if "checkpoint" in f or "lock" in f or "staging" in f or f.endswith(".bin")
                or "predictions" in f]


def perturb_adapter(run: Path) -> None:
    weights = run / "model" / "adapter_model.safetensors"
    tensors = load_file(weights)
    save_file({k: v + 1e-3 for k, v in tensors.items()}, weights)


def test_push_refuses_unfinished_unevaluated_stale_and_overlapping_runs(trained, run, tmp_path, capsys):
    refuse = ["push", "--repo-id", "someone/x", "--dry-run"]
    unfinished = shutil.copytree(trained, tmp_path / "unfinished")
    (unfinished / "train_metrics.json").unlink()
    assert main([*refuse, str(unfinished)]) == 2 and "not a finished training run" in one_line_error(capsys)
    assert main([*refuse, str(trained)]) == 2 and "has not been evaluated" in one_line_error(capsys)
    overlapping = shutil.copytree(run, tmp_path / "overlapping")
    metrics = read_json(overlapping / "eval-test" / "metrics.json")
    metrics["training_overlap"] = {"checked": True, "trained_on": 3, "of": 4}  # as scored before evaluate refused it
    write_json(overlapping / "eval-test" / "metrics.json", metrics)
    assert main([*refuse, str(overlapping)]) == 2 and "3 of its dialogues are ones the run trained on" in \
        one_line_error(capsys)
    perturb_adapter(run)  # trained further since it was scored
    assert main([*refuse, str(run)]) == 2 and "no longer holds" in one_line_error(capsys)
    card = render_card(RunLayout.of(run))
    assert "Left out: eval-test scored weights" in card and "model-index" not in card


@pytest.fixture
def online(monkeypatch):
    """The Hub's client allowed to connect (the tests run with HF_HUB_OFFLINE=1), on the LFS path the stand-in
    speaks."""
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_DISABLE_XET", True)


def test_push_uploads_one_commit_to_a_hub_stand_in(run, online, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with HubStandIn(TOKEN) as hub:
        monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", hub.url)
        assert main(["push", str(run), "--repo-id", "someone/lora-test", "--private"]) == 0
    printed = capsys.readouterr()
    assert TOKEN not in printed.out + printed.err
    assert not [f for f in run.rglob("*") if f.is_file() and TOKEN.encode() in f.read_bytes()]
    repo = hub.repos["someone/lora-test"]
    assert repo.private and len(repo.commits) == 1 and not hub.refused
    files = repo.commits[0]["files"]
    assert files["adapter_model.safetensors"] == (run / "model" / "adapter_model.safetensors").read_bytes()
    assert files["run/eval-test/metrics.json"] == (run / "eval-test" / "metrics.json").read_bytes()
    card = files["README.md"].decode()
    assert "someone/lora-test" in card and card.split("---\n", 2)[1] != ""
    hub_copy = tmp_path / "from-the-hub"  # what `from_pretrained("someone/lora-test")` would download
    for path, data in files.items():
        (hub_copy / path).parent.mkdir(parents=True, exist_ok=True)
        (hub_copy / path).write_bytes(data)
    from dialogsum_lab.modeling import load_trained

    model, _, info = load_trained(str(hub_copy), base="tiny-random-t5", device="cpu")
    assert info["adapter"] == str(hub_copy) and model.peft_config["default"].r == 32


def test_push_says_in_one_line_when_offline_or_the_hub_refuses_the_token(run, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", "hf_wrong_token")
    assert main(["push", str(run), "--repo-id", "someone/lora-test"]) == 2
    assert "HF_HUB_OFFLINE is set" in one_line_error(capsys)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_DISABLE_XET", True)
    with HubStandIn(TOKEN) as hub:
        monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", hub.url)
        assert main(["push", str(run), "--repo-id", "someone/lora-test"]) == 2
    err = one_line_error(capsys)
    assert "HTTP 401" in err and "hf auth login" in err and "hf_wrong_token" not in err and not hub.repos
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    assert main(["push", str(run), "--repo-id", "someone/lora-test"]) == 2
    assert "set HF_TOKEN or run `hf auth login`" in one_line_error(capsys)


def test_push_and_deploy_refuse_links_that_lead_out_of_the_run(run, tmp_path, capsys):
    from dialogsum_lab.sagemaker_serve import serving_archive

    secret = tmp_path / "id_ed25519"
    secret.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    push = ["push", str(run), "--repo-id", "someone/x", "--dry-run"]
    (run / "model" / "notes.txt").symlink_to(secret)  # in the model folder
    assert main(push) == 2 and "leads out of" in one_line_error(capsys)
    with pytest.raises(UserError, match="leads out of"):
        serving_archive(run, tmp_path)
    (run / "model" / "notes.txt").unlink()
    (run / "loss_curve.png").unlink()
    (run / "loss_curve.png").symlink_to(secret)  # a run record's name
    assert main(push) == 2 and "loss_curve.png is a link that leads out of" in one_line_error(capsys)
    (run / "loss_curve.png").unlink()
    (run / "loss_curve.png").symlink_to(run / "config.yaml")  # a link that stays inside the run is the run's own
    assert main(push) == 0 and "run/loss_curve.png" in capsys.readouterr().out


def test_recorded_paths_are_found_from_the_evaluation_not_from_the_current_folder(run, tmp_path, monkeypatch,
                                                                                capsys):
    monkeypatch.chdir(run.parent)  # evaluated as a user types it: a path relative to where they stand
    assert main(["evaluate", "lora", "--limit", "4", "--bootstrap-samples", "50", "--device", "cpu",
                 "--overwrite"]) == 0
    capsys.readouterr()
    metrics = read_json(run / "eval-test" / "metrics.json")
    assert metrics["adapter"] == "lora/model" and metrics["weights_folder"] == "../model"
    moved = run.rename(run.parent / "lora2")
    perturb_adapter(moved)  # trained further after it was scored
    assert main(["push", "lora2", "--repo-id", "someone/x", "--dry-run"]) == 2 and "lora2" in one_line_error(capsys)
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(moved, elsewhere / "lora")  # a folder of the same name where the command runs
    monkeypatch.chdir(elsewhere)
    assert main(["compare", str(moved), "--out", str(tmp_path / "cmp")]) == 2 and "is stale" in \
        one_line_error(capsys)
    old = metrics | {"adapter": "somewhere/else/model"}  # an evaluation made before weights_folder was recorded
    del old["weights_folder"]
    write_json(moved / "eval-test" / "metrics.json", old)
    assert main(["compare", str(moved), "--out", str(tmp_path / "cmp2")]) == 2 and str(moved / "model") in \
        one_line_error(capsys)


def test_the_cards_loading_code_is_python_whatever_the_paths_hold():
    import ast
    from types import SimpleNamespace

    from dialogsum_lab.model_card import _usage

    hostile = 'base"), __import__("os").system("echo pwned"), ("'
    config = SimpleNamespace(model=hostile, method="lora", prompt_template="Summarize:\n{dialogue}\nSummary:",
                             max_source_length=512)
    code = _usage(config, 'repo "quoted"', adapter=True).split("```python\n")[1].split("```")[0]
    calls = [n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Call)]
    assert not [c for c in calls if getattr(c.func, "id", "") == "__import__"]  # the path stayed a string
    assert hostile in [n.value for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Constant)]
