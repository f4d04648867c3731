"""What the notebooks show: the preset they choose, the runs they reuse, the objects they build stage by stage,
and (after `make notebooks`) what their executed copies hold."""

import json
import os
import re
from pathlib import Path

import pytest
import torch

from dialogsum_lab import methods, notebook, training
from dialogsum_lab.errors import UserError
from dialogsum_lab.experiments import ensure_run, plan_run
from dialogsum_lab.modeling import TINY_MODEL, load_trained
from dialogsum_lab.preset import Preset
from dialogsum_lab.trainer_setup import make_trainer

NOTEBOOKS = [f"0{i}" for i in range(1, 7)]
QUICK = {"max_steps": 2, "eval_strategy": "no", "save_strategy": "no", "device": "cpu"}


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(notebook, "try_to_load_from_cache", lambda repo, filename: None)
    monkeypatch.setattr(notebook, "_on_hub", lambda name: False)


def test_a_gpu_chooses_lab(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert notebook.choose_preset() == ("lab", "a CUDA GPU is present")


def test_no_gpu_and_no_real_model_chooses_the_miniature(no_gpu):
    preset, reason = notebook.choose_preset()
    assert preset == "miniature" and "google/flan-t5-base is neither on disk nor reachable" in reason


def test_no_gpu_but_a_reachable_real_model_chooses_course(no_gpu, monkeypatch, tmp_path):
    monkeypatch.setattr(notebook, "_on_hub", lambda name: name == "google/flan-t5-base")
    assert notebook.choose_preset() == ("course", "no GPU; google/flan-t5-base is on the Hugging Face Hub")
    monkeypatch.setattr(notebook, "_on_hub", lambda name: False)
    monkeypatch.setattr(notebook, "try_to_load_from_cache", lambda repo, filename: f"/cache/{repo}/{filename}")
    assert notebook.choose_preset()[0] == "course"


def test_a_local_copy_named_in_the_parameters_chooses_course(no_gpu, tmp_path):
    copy = tmp_path / "flan-t5-base"
    copy.mkdir()
    assert notebook.choose_preset(model=str(copy))[0] == "miniature"  # an empty folder is no model
    (copy / "config.json").write_text("{}")
    assert notebook.choose_preset(model=str(copy)) == ("course", f"no GPU; the model is in {copy}")
    assert notebook.choose_preset("lab", model=str(copy)) == ("lab", "as asked")


def test_setup_points_the_preset_at_local_copies_and_files_runs_by_preset_and_model(no_gpu, tmp_path, monkeypatch):
    session = notebook.setup("smoke", model=TINY_MODEL, data="sample", out_dir=str(tmp_path))
    assert session.name == "smoke" and (session.preset.model, session.preset.data) == (TINY_MODEL, "sample")
    assert session.root == tmp_path / f"smoke-{TINY_MODEL}"
    roots = {notebook.run_root(str(tmp_path), p, m) for p in ("smoke", "course", "lab")
             for m in (TINY_MODEL, "google/flan-t5-base")}
    assert len(roots) == 6


def test_a_smoke_run_is_never_reused_for_course_or_lab(tmp_path):
    run = ensure_run("smoke", "lora", tmp_path / "lora", overrides=QUICK)
    assert plan_run("smoke", "lora", run, overrides=QUICK)[1] is True
    for preset in ("course", "lab"):
        with pytest.raises(UserError, match=r"made with other settings \(model: 'tiny-random-t5' -> "
                                            r"'google/flan-t5-base'.*overwrite = True in its parameters cell"):
            plan_run(preset, "lora", run, overrides=QUICK)


def test_the_stages_a_notebook_runs_make_the_run_train_makes(tmp_path):
    """load_base -> wrap -> make_trainer -> trainer.train() -> save_run gives the same adapter as `train`."""
    config = Preset.load("smoke").train_config("lora", QUICK)
    by_train = training.train(config, tmp_path / "train")
    run_dir = tmp_path / "stages"
    base, tokenizer = methods.load_base(config)
    model = methods.wrap(base, config)
    trainer = make_trainer(config, model, tokenizer, training.checkpoint_folder(run_dir))
    with pytest.raises(UserError, match=r"trained 0 of \? steps: run trainer.train\(\)"):
        training.save_run(trainer, config, run_dir)  # an untrained model is no finished run
    trainer.train()
    training.save_run(trainer, config, run_dir)
    for name in ("config.yaml", "train_metrics.json", "trainer_state.json", "loss_curve.png",
                 "model/adapter_model.safetensors", "model/base_model.json", "model/tokenizer.json"):
        assert (run_dir / name).is_file(), name
    ours, _, _ = load_trained(str(run_dir))
    theirs, _, _ = load_trained(str(by_train))
    for (name, a), b in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        assert torch.equal(a, b), name
    assert plan_run("smoke", "lora", run_dir, overrides=QUICK)[1]
    with pytest.raises(UserError, match="already holds results"):
        training.save_run(trainer, config, run_dir)  # never over a finished run without overwrite


# --- the executed notebooks (written by `make notebooks`, which `make test` runs first) ---

EXECUTED = os.environ.get("DIALOGSUM_LAB_EXECUTED_NOTEBOOKS")


def _executed(prefix: str) -> dict:
    if not EXECUTED:
        pytest.skip("set DIALOGSUM_LAB_EXECUTED_NOTEBOOKS to the folder `make notebooks` wrote (make test does)")
    found = sorted(Path(EXECUTED).glob(f"{prefix}_*.ipynb"))
    assert found, f"no executed notebook {prefix}_*.ipynb in {EXECUTED}"
    return json.loads(found[0].read_text())


def _as_shown(outputs: list[dict]) -> list[dict]:
    """Outputs as Jupyter shows them: consecutive stream chunks of one name merged, carriage returns applied."""
    shown = []
    for output in outputs:
        if output["output_type"] == "stream" and shown and shown[-1].get("name") == output["name"]:
            shown[-1] = {**shown[-1], "text": shown[-1]["text"] + "".join(output["text"])}
        else:
            shown.append({**output, "text": "".join(output.get("text", ""))})
    for output in shown:
        if output["output_type"] == "stream":
            output["text"] = "\n".join(line.rsplit("\r", 1)[-1] for line in output["text"].split("\n"))
    return shown


@pytest.mark.parametrize("prefix", NOTEBOOKS)
def test_executed_notebooks_are_clean_and_quiet(prefix):
    nb = _executed(prefix)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for index, cell in enumerate(code):
        outputs = _as_shown(cell.get("outputs", []))
        where = f"{prefix}, code cell {index}: {''.join(cell['source'])[:60]!r}"
        assert not [o for o in outputs if o["output_type"] == "error"], where
        text = "\n".join(o["text"] for o in outputs if o["output_type"] == "stream")
        assert not re.search(r"Traceback|Warning|warnings\.warn", text), f"{where}: {text[:300]}"
        assert not [o for o in outputs if o.get("name") == "stderr"], f"{where}: {text[:300]}"
        widgets = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
        assert all("".join(o["data"].get("text/plain", "")).startswith("[interactive: ") for o in widgets), \
            f"{where}: a widget a saved copy shows as a frozen control (a progress bar, or a widget without its note)"
        assert len([o for o in outputs if o["output_type"] == "stream"]) <= 4, where
        assert len(text.splitlines()) <= 40, f"{where}: {len(text.splitlines())} lines"
    last = "".join(nb["cells"][-1]["source"])
    assert nb["cells"][-1]["cell_type"] == "markdown" and last.startswith("## What you saw"), prefix


@pytest.mark.parametrize("prefix", NOTEBOOKS[:5])
def test_executed_notebooks_on_the_miniature_say_what_it_is(prefix):
    nb = _executed(prefix)
    shown = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    markdown = "".join("".join(o.get("data", {}).get("text/markdown", "")) for o in shown)
    assert "Preset **miniature**" in markdown and "Synthetic miniature" in markdown
    tables = "".join("".join(o.get("data", {}).get("text/html", "")) for o in shown)
    assert "not comparable with the course" in tables and "LoRA minus original (points)" in tables


@pytest.mark.parametrize("prefix", ["02", "03", "04"])
def test_executed_notebooks_show_that_fine_tuning_learned(prefix):
    """On the miniature every method beats zero-shot beyond the noise; the notebook says so from its own files."""
    nb = _executed(prefix)
    shown = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    markdown = "".join("".join(o.get("data", {}).get("text/markdown", "")) for o in shown)
    assert "**What this run shows**" in markdown
    verdicts = re.findall(r"- \*\*([^*]+)\*\* is (better than|worse than|not distinguishable from) zero-shot", markdown)
    assert verdicts and all(verdict == "better than" for _, verdict in verdicts), verdicts
