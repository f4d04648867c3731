"""Filesystem faults, locks and signals: one line before heavy work where a fault can be seen, the 'nothing left
behind, nothing lost' promise on every path, locks that cannot be held twice, and files readable like the rest."""

import errno
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dialogsum_lab import runs
from dialogsum_lab.cli import main
from dialogsum_lab.errors import UserError

QUICK = ["--max-steps", "2", "--eval-strategy", "no", "--device", "cpu"]
EVALUATE = ["--limit", "2", "--max-new-tokens", "3", "--bootstrap-samples", "20"]


def one_line_error(capsys) -> str:
    """The error line a user sees (after any progress bar the work printed before it failed)."""
    err = capsys.readouterr().err.strip()
    last = err.rsplit("\n", 1)[-1].rsplit("\r", 1)[-1]
    assert last.startswith("dialogsum-lab: error:") and "Traceback" not in err, err
    return last


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device", "/full/disk/file")


def test_an_unwritable_out_is_one_line_before_the_model_loads(tmp_path, capsys, monkeypatch):
    import tempfile

    from dialogsum_lab import modeling

    monkeypatch.setattr(tempfile, "TemporaryFile", lambda *a, **k: (_ for _ in ()).throw(
        OSError(errno.EROFS, "Read-only file system")))
    loaded = []
    monkeypatch.setattr(modeling, "load_model_and_tokenizer", lambda *a, **k: loaded.append(1))
    assert main(["zero-shot", "--config", "smoke", *EVALUATE, "--out", str(tmp_path / "out")]) == 2
    assert "Read-only file system" in one_line_error(capsys) and not loaded


def test_an_unwritable_cache_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DIALOGSUM_LAB_CACHE", "/sys/dialogsum-cache")  # sysfs: not even root may write there
    assert main(["zero-shot", "--config", "smoke", *EVALUATE, "--out", str(tmp_path / "out")]) == 2
    message = one_line_error(capsys)
    assert "cannot write in /sys" in message and "DIALOGSUM_LAB_CACHE" in message and not (tmp_path / "out").exists()


def test_an_empty_cache_variable_means_the_default(monkeypatch):
    from dialogsum_lab.modeling import cache_dir

    monkeypatch.setenv("DIALOGSUM_LAB_CACHE", "")
    assert cache_dir() == Path.home() / ".cache" / "dialogsum-lab"


def test_a_full_disk_while_evaluating_keeps_the_earlier_result_and_says_so(tmp_path, capsys, monkeypatch):
    out = tmp_path / "zero"
    assert main(["zero-shot", "--config", "smoke", *EVALUATE, "--out", str(out)]) == 0
    before = (out / "metrics.json").read_text()
    monkeypatch.setattr("dialogsum_lab.evaluation.write_jsonl", no_space)
    capsys.readouterr()
    assert main(["zero-shot", "--config", "smoke", *EVALUATE, "--out", str(out), "--overwrite"]) == 2
    message = one_line_error(capsys)
    assert "could not write /full/disk/file: the disk is full" in message and "as they were" in message
    assert (out / "metrics.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["zero"]  # no staging folder, no lock


def test_a_full_disk_before_the_first_checkpoint_leaves_nothing_and_retries_agree(tmp_path, capsys, monkeypatch):
    from transformers import Seq2SeqTrainer

    run = tmp_path / "run"
    monkeypatch.setattr(Seq2SeqTrainer, "save_model", no_space)
    assert main(["train", "--config", "smoke", "--method", "lora", *QUICK, "--save-strategy", "no", "--out",
                 str(run)]) == 2
    assert "the disk is full" in one_line_error(capsys)
    assert not run.exists()
    # What a SIGKILL before the first checkpoint leaves: settings and an empty checkpoints folder.
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("method: lora\n")
    monkeypatch.undo()
    assert main(["train", "--config", "smoke", "--method", "lora", *QUICK, "--out", str(run)]) == 2
    first = one_line_error(capsys)
    assert "stopped before its first checkpoint, so there is nothing to resume" in first and "--overwrite" in first
    assert main(["train", "--resume", "--out", str(run)]) == 2
    assert "no complete checkpoint to resume from" in one_line_error(capsys)
    assert main(["train", "--config", "smoke", "--method", "lora", *QUICK, "--out", str(run), "--overwrite"]) == 0


def test_the_folder_you_are_in_is_no_out(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    for out in (".", str(tmp_path.parent)):
        assert main(["zero-shot", "--config", "smoke", *EVALUATE, "--out", out, "--overwrite"]) == 2
        assert "is the folder you are working in" in one_line_error(capsys)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_overwriting_through_a_link_replaces_what_it_points_at(tmp_path):
    target, link = tmp_path / "real", tmp_path / "link"
    assert main(["zero-shot", "--config", "smoke", *EVALUATE, "--out", str(target)]) == 0
    link.symlink_to(target)
    assert main(["zero-shot", "--config", "smoke", *EVALUATE, "--max-new-tokens", "2", "--out", str(link),
                 "--overwrite"]) == 0
    assert link.is_symlink() and json.loads((link / "metrics.json").read_text())["generation"]["max_new_tokens"] == 2


def test_saved_weights_are_as_readable_as_every_other_file(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--config", "smoke", "--method", "lora", *QUICK, "--save-strategy", "no", "--out",
                 str(run)]) == 0
    modes = {p.name: p.stat().st_mode & 0o777 for p in run.rglob("*") if p.is_file()}
    assert modes["adapter_model.safetensors"] == modes["config.yaml"] == runs.FILE_MODE


def test_a_lock_file_removed_while_a_claimer_waited_is_never_held_twice(tmp_path, monkeypatch):
    """B opens the lock file while A holds it and is paused before locking; A finishes (removing the file) and C
    claims anew. When B goes on it must find the file it opened gone and meet C, not hold a lock of its own."""
    path, opened, go, result = tmp_path / "run", threading.Event(), threading.Event(), {}

    def pause_b(handle):
        if threading.current_thread().name == "B" and not opened.is_set():
            opened.set()
            go.wait(10)

    def claimer_b():
        try:
            with runs.claim(path):
                result["B"] = "held"
        except UserError as err:
            result["B"] = err

    monkeypatch.setattr(runs, "_before_lock", pause_b)
    with runs.claim(path):  # A
        b = threading.Thread(target=claimer_b, name="B")
        b.start()
        assert opened.wait(10)
    with runs.claim(path):  # C, on a new lock file
        go.set()
        b.join(10)
        assert isinstance(result["B"], UserError) and "another dialogsum-lab process" in str(result["B"])
    assert not list(tmp_path.iterdir())  # no lock file left behind


@pytest.mark.slow
def test_sigterm_while_evaluating_says_what_was_kept(tmp_path):
    out = tmp_path / "zero"
    assert main(["zero-shot", "--config", "smoke", *EVALUATE, "--out", str(out)]) == 0
    before = (out / "metrics.json").read_text()
    command = [sys.executable, "-m", "dialogsum_lab.cli", "zero-shot", "--config", "smoke", "--limit", "12",
               "--max-new-tokens", "400",
               "--batch-size", "1", "--out", str(out), "--overwrite"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / ".zero.staging").exists():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 143
    assert "stopped by SIGTERM. Nothing unfinished was kept" in process.stderr.read()
    assert (out / "metrics.json").read_text() == before and not (tmp_path / ".zero.staging").exists()


def test_notebook_06_launches_on_real_aws_only_with_consent():
    notebook = next((Path(__file__).resolve().parents[1] / "notebooks").glob("06_*.ipynb"))
    cell = next("".join(c["source"]) for c in json.loads(notebook.read_text())["cells"]
                if "".join(c["source"]).startswith("if fake or launch:"))
    started = []

    class Jobs:
        @staticmethod
        def launch(spec, session, wait):
            started.append(spec)
            return f"job-{spec}"

    for fake, launch, expected in ((False, False, {}), (True, False, {"lora": "job-1"}),
                                   (False, True, {"lora": "job-1"})):
        scope = {"fake": fake, "launch": launch, "jobs": Jobs, "specs": {"lora": 1}, "session": None}
        exec(cell.rsplit("\n", 1)[0], scope)  # the cell without its display line
        assert scope["names"] == expected
    assert len(started) == 2

