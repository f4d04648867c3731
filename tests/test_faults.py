"""Faults and bad input as a user meets them: exit code 2 and one clear line, signals that save a checkpoint,
runs that never half-replace each other, and the package as a wheel installs it."""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import one_line_error

from dialogsum_lab.cli import build_parser, main
from dialogsum_lab.config import TrainConfig

DIALOGUE = "#Person1#: Is the shop open on Sunday?\n#Person2#: Only in the morning."
ROW = json.dumps({"id": "a", "dialogue": DIALOGUE, "summary": "Sunday mornings only."})
QUICK = ["--max-steps", "2", "--eval-strategy", "no", "--save-strategy", "no"]


# (file name, content, command after `--data FILE`, what the message must say)
BAD_DATA = [
    ("test.jsonl", b"", ["zero-shot"], r"the test split of .*test.jsonl is empty"),
    ("test.jsonl", b"\x00\x01\xff\xfe binary", ["zero-shot"], r"test.jsonl: cannot read the file .*UTF-8"),
    ("test.jsonl", "café".encode("latin-1"), ["zero-shot"], r"test.jsonl: cannot read the file .*UTF-8"),
    ("test.jsonl", f"{ROW}\n{{broken\n".encode(), ["zero-shot"], r"test.jsonl, line 2: malformed JSON"),
    ("test.jsonl", b'{"text": "x", "summary": "y"}\n', ["zero-shot"],
     r"no 'dialogue' column \(found: 'text', 'summary'\)"),
    ("test.jsonl", f'{ROW}\n{{"id": "b", "dialogue": " ", "summary": "s"}}\n'.encode(), ["zero-shot"],
     r"test.jsonl, line 2: empty dialogue.*--skip-invalid"),
    ("test.json", b'{"rows": 3}', ["zero-shot"], r"test.json: expected rows .* got a JSON dict"),
    ("test.jsonl", f"{ROW}\n".encode(), ["zero-shot", "--split", "nope"], r"split 'nope' is not in this data"),
    ("train.jsonl", b"", ["train", *QUICK], r"the training split of .*train.jsonl has no dialogues"),
]


@pytest.mark.parametrize(("name", "content", "command", "message"), BAD_DATA,
                         ids=["empty", "binary", "latin-1", "malformed-line", "missing-column", "blank-dialogue",
                              "json-not-rows", "unknown-split", "empty-train-split"])
def test_bad_data_is_one_line_naming_file_line_and_fix(tmp_path, capsys, name, content, command, message):
    import re

    (tmp_path / name).write_bytes(content)
    out = tmp_path / "out"
    assert main([command[0], "--config", "smoke", "--data", str(tmp_path / name), "--out", str(out), *command[1:]]) == 2
    assert re.search(message, one_line_error(capsys))
    assert not out.exists()  # nothing written, so the corrected retry needs no --overwrite


def test_a_folder_without_split_files_and_a_wrong_prediction_count(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("nothing here")
    assert main(["zero-shot", "--config", "smoke", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "has no data files named by split" in one_line_error(capsys)
    (tmp_path / "one.txt").write_text("a single summary\n")
    assert main(["score", "--predictions", str(tmp_path / "one.txt"), "--out", str(tmp_path / "s")]) == 2
    assert "has 1 lines but the split has 12 dialogues" in one_line_error(capsys)


def test_json_documents_load_as_rows(tmp_path):
    from dialogsum_lab.data import load_dialogsum

    (tmp_path / "columns.json").write_text(json.dumps({"dialogue": [DIALOGUE, DIALOGUE + "!"], "summary": ["a", "b"]},
                                                      indent=2))
    (tmp_path / "one.json").write_text(json.dumps({"dialogue": DIALOGUE, "summary": "a"}, indent=2))
    assert load_dialogsum(str(tmp_path / "columns.json"))["data"]["summary"] == ["a", "b"]
    assert load_dialogsum(str(tmp_path / "one.json"))["data"]["summary"] == ["a"]


# (preset YAML or options, what the message must say): all refused before a folder is made
BAD_SETTINGS = [
    ("train:\n  batch_size: eight\n", [], r"batch_size is 'eight'; it must be a whole number"),
    ("train:\n  lr_scheduler: cosinee\n", [], r"lr_scheduler is 'cosinee'; choose one of linear, cosine"),
    ("train:\n  multitask: maybe\n", [], r"multitask is 'maybe'; write true or false"),
    (None, ["--device", "gpu"], r"device 'gpu' is unknown; use auto, cpu or cuda"),
    (None, ["--device", "cuda:1"], r"first visible GPU.*CUDA_VISIBLE_DEVICES=1"),
    (None, ["--lora-target-modules", "qq"], r"lora_target_modules qq name no layer .*linear layers are: .*wi_0"),
    (None, ["--fsdp", "true"], r"fsdp needs CUDA GPUs"),
]


@pytest.mark.parametrize(("preset", "options", "message"), BAD_SETTINGS,
                         ids=["batch-size-text", "scheduler-typo", "bool-text", "device-typo", "device-index",
                              "target-module", "fsdp-on-cpu"])
def test_bad_settings_are_refused_before_anything_is_written(tmp_path, capsys, preset, options, message):
    import re

    config = ["--config", str(tmp_path / "preset.yaml")] if preset else []
    if preset:
        (tmp_path / "preset.yaml").write_text(preset)
    out = tmp_path / "out"
    assert main(["train", "--config", "smoke", "--method", "lora", *config, *options, *QUICK, "--out", str(out)]) == 2
    assert re.search(message, one_line_error(capsys))
    assert not out.exists()


def test_settings_text_from_yaml_or_launchers_is_converted():
    config = TrainConfig.from_dict({"batch_size": "8", "multitask": "no", "lr_scheduler": "cosine"})
    assert (config.batch_size, config.multitask) == (8, False)


def test_closed_choices_fail_at_parse_time_and_write_nothing(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["compare", str(tmp_path), "--view", "typo", "--out", str(tmp_path / "cmp")])
    assert exit_.value.code == 2 and "invalid choice: 'typo'" in capsys.readouterr().err
    assert not (tmp_path / "cmp").exists()


def test_every_flag_is_kebab_case_and_snake_case_still_works(tmp_path):
    train = next(a for a in build_parser()._actions if a.dest == "command").choices["train"]
    shown = [s for a in train._actions if a.help != "==SUPPRESS==" for s in a.option_strings]
    assert "--max-steps" in shown and "--lora-r" in shown and not [s for s in shown if "_" in s]
    args = build_parser().parse_args(["train", "--max_steps", "3", "--lora-r", "4"])
    assert (args.max_steps, args.lora_r) == (3, 4)
    scoring = build_parser().parse_args(["score", "--predictions", "p.txt", "--seed", "7"])
    assert scoring.bootstrap_seed == 7  # --seed on scoring commands is the bootstrap's, now --bootstrap-seed


def test_help_answers_without_loading_torch():
    code = ("import sys; from dialogsum_lab.cli import build_parser; build_parser().format_help(); "
            "print(sorted(m for m in ('torch', 'transformers', 'datasets', 'pandas') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_a_second_run_into_the_same_folder_is_refused(tmp_path, capsys):
    from dialogsum_lab.runs import claim

    out = tmp_path / "run"
    with claim(out):  # as another process busy writing it would hold it
        assert main(["zero-shot", "--config", "smoke", "--limit", "1", "--max-new-tokens", "2", "--out", str(out)]) == 2
        assert "another dialogsum-lab process is writing" in one_line_error(capsys)
    assert main(["zero-shot", "--config", "smoke", "--limit", "1", "--max-new-tokens", "2", "--out", str(out)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no lock or staging files left behind


def test_written_files_have_the_permissions_of_any_new_file(tmp_path):
    from dialogsum_lab.runs import write_json

    (tmp_path / "plain").write_text("x")  # as the Trainer writes trainer_state.json
    assert (write_json(tmp_path / "m.json", {}).stat().st_mode & 0o777) == ((tmp_path / "plain").stat().st_mode & 0o777)


@contextmanager
def training_process(run: Path, log: Path) -> Iterator[subprocess.Popen]:
    """A long tiny-model run in its own process, checkpointing every 3 steps, once a checkpoint is complete."""
    command = [sys.executable, "-m", "dialogsum_lab.cli", "train", "--config", "smoke", "--method", "lora",
               "--max-steps", "100000",
               "--save-strategy", "steps", "--save-steps", "3", "--eval-strategy", "no", "--out", str(run)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    try:
        deadline = time.monotonic() + 120
        while not list(run.glob("checkpoints/checkpoint-*/trainer_state.json")):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def resume_steps(run: Path, extra: int) -> tuple[int, int]:
    """(step resumed from, global step reached after `extra` more), resuming through the command line."""
    from dialogsum_lab.runs import last_complete_checkpoint

    start = json.loads((Path(last_complete_checkpoint(run / "checkpoints")) / "trainer_state.json").read_text())[
        "global_step"]
    assert main(["train", "--resume", "--out", str(run), "--max-steps", str(start + extra)]) == 0
    return start, json.loads((run / "trainer_state.json").read_text())["global_step"]


@pytest.mark.slow
@pytest.mark.parametrize(("sent", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["sigterm", "ctrl-c"])
def test_a_signal_saves_a_checkpoint_and_says_how_to_resume(tmp_path, capsys, sent, code):
    run, log = tmp_path / "run", tmp_path / "log"
    with training_process(run, log) as process:
        process.send_signal(sent)
        assert process.wait(timeout=120) == code
    err = log.read_text()
    assert "Traceback" not in err
    step = int(err.split("interrupted at step ")[1].split(";")[0])
    assert step >= 3 and (run / "checkpoints" / f"checkpoint-{step}").is_dir()
    assert f"Resume with: dialogsum-lab train --resume --out {run}" in err
    assert main(["evaluate", str(run), "--limit", "1"]) == 2  # not a finished run yet: say so, write nothing
    assert f"unfinished training run (last checkpoint: checkpoint-{step})" in one_line_error(capsys)
    assert not (run / "eval-test").exists()
    assert main(["merge", str(run)]) == 2 and "--resume" in one_line_error(capsys)
    assert not (run / "merged").exists()
    assert resume_steps(run, 2) == (step, step + 2)


@pytest.mark.slow
def test_sigkill_leaves_checkpoints_that_resume(tmp_path):
    run = tmp_path / "run"
    with training_process(run, tmp_path / "log") as process:
        process.kill()
        process.wait(timeout=60)
    (run / "checkpoints" / "checkpoint-99999").mkdir()  # as a kill in the middle of saving leaves one
    start, reached = resume_steps(run, 2)
    assert start >= 3 and reached == start + 2


@pytest.mark.slow
def test_the_wheel_carries_presets_and_sample_data(tmp_path):
    """What `pip install .` (and a SageMaker container) gets: no repository around it."""
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(root)], check=True, capture_output=True)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    deps = next(p for p in map(Path, sys.path) if p.name == "site-packages" and (p / "torch").is_dir())
    (site / "deps.pth").write_text(str(deps) + "\n")  # the libraries, but not the editable checkout
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
                    *map(str, (tmp_path / "dist").glob("*.whl"))], check=True, capture_output=True)
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    env = os.environ | {"DIALOGSUM_LAB_CACHE": str(tmp_path / "cache")}
    result = subprocess.run([str(venv / "bin" / "python"), "-m", "dialogsum_lab.cli", "zero-shot", "--config", "smoke",
                             "--limit", "2", "--max-new-tokens", "4", "--out", "r"], cwd=empty, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((empty / "r" / "metrics.json").read_text())
    assert metrics["n_examples"] == 2 and str(site) in subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import dialogsum_lab; print(dialogsum_lab.__file__)"],
        capture_output=True, text=True, check=True).stdout


@pytest.mark.slow
def test_inside_a_sagemaker_job_it_needs_no_paths_and_resumes_a_restarted_job(tmp_path):
    """The SM_* variables a training container sets; hyperparameters as SageMaker passes them (`--key value`)."""
    from dialogsum_lab.config import SAMPLE_DIR

    channels = {split: tmp_path / "input" / split for split in ("train", "validation")}
    for split, folder in channels.items():
        folder.mkdir(parents=True)
        (folder / f"part-{split}.jsonl").write_bytes((SAMPLE_DIR / f"{split}.jsonl").read_bytes())
    env = os.environ | {"SM_CHANNEL_TRAIN": str(channels["train"]),
                        "SM_CHANNEL_VALIDATION": str(channels["validation"]),
                        "SM_MODEL_DIR": str(tmp_path / "model"), "SM_OUTPUT_DATA_DIR": str(tmp_path / "output"),
                        "DIALOGSUM_LAB_JOB_CHECKPOINTS": str(tmp_path / "checkpoints")}
    (tmp_path / "checkpoints").mkdir()  # the job was given a checkpoint S3 URI
    command = [sys.executable, "-m", "dialogsum_lab.cli", "train", "--config", "smoke", "--method", "lora",
               "--max_steps", "60",
               "--save_strategy", "steps", "--save_steps", "3", "--eval_strategy", "steps", "--limit_eval", "2",
               "--multitask", "false", "--learning_rate", "1e-2"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list((tmp_path / "checkpoints").glob("checkpoint-*/trainer_state.json")):
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        first.kill()  # a spot reclaim
        first.wait()
    assert not (tmp_path / "model" / "adapter_model.safetensors").exists()
    restarted = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert restarted.returncode == 0, restarted.stderr[-2000:]
    assert "Resuming from" in restarted.stdout and "this job was restarted" in restarted.stdout
    assert (tmp_path / "model" / "adapter_model.safetensors").exists()  # what SageMaker packs as model.tar.gz
    for name in ("config.yaml", "train_metrics.json", "trainer_state.json", "loss_curve.png"):
        assert (tmp_path / "output" / name).exists()
    config = (tmp_path / "output" / "config.yaml").read_text()
    assert "data: sagemaker-channels" in config and "multitask: false" in config and "learning_rate: 0.01" in config
    state = json.loads((tmp_path / "output" / "trainer_state.json").read_text())
    steps = [h["step"] for h in state["log_history"] if "loss" in h]
    assert state["global_step"] == 60 and steps == sorted(set(steps))  # resumed: no step trained twice
