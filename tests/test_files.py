"""Damaged or incomplete files, read as a user meets them: one line naming the file and the fix, exit 2, nothing
else touched; fall-backs said aloud; archives that could write outside their folder refused whole."""

import io
import json
import re
import shutil
import tarfile

import pytest
from helpers import CHECKPOINTED_TRAIN, one_line_error

from dialogsum_lab.cli import main
from dialogsum_lab.errors import UserError
from dialogsum_lab.files import unpack_archive

EVALUATE = ["--limit", "2", "--max-new-tokens", "3", "--bootstrap-samples", "20"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("files") / "run"
    assert main([*CHECKPOINTED_TRAIN, "--out", str(folder)]) == 0
    assert main(["evaluate", str(folder), *EVALUATE]) == 0
    return folder


@pytest.fixture
def copy(run, tmp_path):
    return shutil.copytree(run, tmp_path / "run")


def truncate(path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


# (file in the run, how it is damaged, what the message names)
DAMAGE = [
    ("model/adapter_model.safetensors", lambda p: truncate(p, 200), r"adapter_model.safetensors is damaged"),
    ("model/adapter_model.safetensors", lambda p: truncate(p, 4), r"adapter_model.safetensors is damaged"),
    ("model/adapter_config.json", lambda p: p.write_text('{"peft_type": "LORA",'), r"adapter_config.json is damaged"),
    ("model/base_model.json", lambda p: p.write_text("[1, 2"), r"base_model.json is damaged"),
    ("config.yaml", lambda p: p.write_text(""), r"config.yaml is damaged or empty"),
]


@pytest.mark.parametrize(("name", "damage", "message"), DAMAGE,
                         ids=["weights-truncated", "weights-header", "adapter-config", "base-record", "empty-config"])
def test_a_damaged_run_file_is_one_line_naming_it(copy, capsys, name, damage, message):
    damage(copy / name)
    before = sorted(p.relative_to(copy) for p in copy.rglob("*"))
    assert main(["evaluate", str(copy), *EVALUATE, "--overwrite"]) == 2
    assert re.search(message, one_line_error(capsys))
    assert sorted(p.relative_to(copy) for p in copy.rglob("*")) == before


def test_a_model_folder_missing_files_or_weights_is_refused_naming_them(tiny, tmp_path, capsys):
    model, tokenizer = tiny
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    partial = shutil.copytree(folder, tmp_path / "partial")
    for name in ("tokenizer.json", "spiece.model", "tokenizer_config.json"):
        (partial / name).unlink(missing_ok=True)
    assert main(["zero-shot", "--config", "smoke", "--model", str(partial), *EVALUATE, "--out",
                 str(tmp_path / "z")]) == 2
    assert "lacks a tokenizer" in one_line_error(capsys)
    damaged = shutil.copytree(folder, tmp_path / "damaged")
    (damaged / "tokenizer.json").write_text("{not json")
    assert main(["zero-shot", "--config", "smoke", "--model", str(damaged), *EVALUATE, "--out",
                 str(tmp_path / "z")]) == 2
    assert "could not load model" in one_line_error(capsys)
    from safetensors.torch import load_file, save_file

    weights = load_file(folder / "model.safetensors")
    save_file({k: v for k, v in weights.items() if "block.1." not in k}, folder / "model.safetensors")
    assert main(["zero-shot", "--config", "smoke", "--model", str(folder), *EVALUATE, "--out",
                 str(tmp_path / "z")]) == 2
    assert re.search(r"lacks \d+ of its weights \(e\.g\. .*block\.1\.", one_line_error(capsys))
    assert not (tmp_path / "z").exists()


def test_a_damaged_newest_checkpoint_is_skipped_aloud(copy, capsys):
    newest = copy / "checkpoints" / "checkpoint-4"
    truncate(newest / "optimizer.pt", 100)
    for name in ("model", "train_metrics.json"):
        shutil.rmtree(copy / name) if name == "model" else (copy / name).unlink()
    assert main(["train", "--resume", "--out", str(copy)]) == 0
    assert re.search(r"Skipping the damaged or unfinished checkpoint-4 \(.*optimizer.pt.*\); resuming from "
                     r"checkpoint-2", capsys.readouterr().out)


def test_random_bytes_in_a_checkpoint_are_called_damage_not_pickles(copy, capsys):
    shutil.rmtree(copy / "checkpoints" / "checkpoint-4")
    (copy / "checkpoints" / "checkpoint-2" / "scheduler.pt").write_bytes(b"\x80\x03 random bytes " * 8)
    for name in ("model", "train_metrics.json"):
        shutil.rmtree(copy / name) if name == "model" else (copy / name).unlink()
    assert main(["train", "--resume", "--out", str(copy)]) == 2
    message = one_line_error(capsys)
    assert "no complete checkpoint" in message and "pickle" not in message


@pytest.mark.parametrize(("content", "message"), [
    ("{}", r"metrics.json is incomplete or damaged \(it lacks n_examples"),
    ("[]", r"metrics.json is damaged: expected a JSON dict"),
    (None, r"predictions.jsonl, line 1: needs a text id, a text prediction"),
], ids=["empty-metrics", "list-metrics", "null-prediction"])
def test_compare_of_a_damaged_evaluation_is_one_line(copy, tmp_path, capsys, content, message):
    evaluation = copy / "eval-test"
    if content is None:
        rows = (evaluation / "predictions.jsonl").read_text().splitlines()
        rows[0] = json.dumps(json.loads(rows[0]) | {"prediction": None})
        (evaluation / "predictions.jsonl").write_text("\n".join(rows) + "\n")
    else:
        (evaluation / "metrics.json").write_text(content)
    assert main(["compare", str(copy), "--out", str(tmp_path / "cmp")]) == 2
    assert re.search(message, one_line_error(capsys))


def _archive(tmp_path, build) -> tarfile.TarFile:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        build(tar)
    buffer.seek(0)
    return tarfile.open(fileobj=buffer)


def _file(tar, name: str, data: bytes = b"x") -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _link(tar, name: str, target: str, kind=tarfile.SYMTYPE) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    tar.addfile(info)


def _device() -> tarfile.TarInfo:
    info = tarfile.TarInfo("zero")
    info.type = tarfile.CHRTYPE
    return info


ESCAPES = {
    "parent-path": lambda tar: _file(tar, "../escaped.txt"),
    "absolute-path": lambda tar: _file(tar, "/tmp/dialogsum-escaped.txt"),
    "symlink": lambda tar: (_link(tar, "out", "/tmp"), _file(tar, "out/escaped.txt")),
    "hardlink": lambda tar: _link(tar, "passwd", "/etc/passwd", tarfile.LNKTYPE),
    # CVE-2025-4517's shape: a chain of links whose resolution leaves the folder, then a file written through it
    "nested-links": lambda tar: (_link(tar, "a/b/c", "../../.."), _link(tar, "a/b/c/d", "../escaped"),
                                 _file(tar, "a/b/c/d/escaped.txt")),
    "device": lambda tar: tar.addfile(_device()),
}


@pytest.mark.parametrize("case", list(ESCAPES))
def test_archives_that_could_escape_are_refused_whole(tmp_path, case):
    folder = tmp_path / "run" / "model"
    folder.mkdir(parents=True)
    archive = _archive(tmp_path, lambda tar: (_file(tar, "config.json", b"{}"), ESCAPES[case](tar)))
    before = sorted(p for p in tmp_path.parent.rglob("*") if tmp_path.name in str(p))
    with pytest.raises(UserError, match=r"model\.tar\.gz holds .*: refused, nothing unpacked"):
        unpack_archive(archive, folder, "model.tar.gz")
    assert not any(folder.iterdir())  # not even the harmless file before the bad one
    assert sorted(p for p in tmp_path.parent.rglob("*") if tmp_path.name in str(p)) == before
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "run" / "escaped.txt").exists()


def test_a_plain_archive_unpacks_with_its_folders(tmp_path):
    archive = _archive(tmp_path, lambda tar: (_file(tar, "model/config.json", b"{}"), _file(tar, "./metrics.json")))
    written = unpack_archive(archive, tmp_path, "output.tar.gz")
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == ["metrics.json", "model/config.json"]
