"""Inputs that parse, or exist, but would hang, exhaust memory or crash later: special files given as data, CSV
fields over the csv module's limit, JSON nested too deeply, numbers too long and lone surrogates, in data files,
predictions and endpoint requests. Each ends in one line naming the file and line (a 4xx at the endpoint)."""

import csv
import json
import os
import re
import signal
from contextlib import contextmanager

import pytest
from helpers import one_line_error

from dialogsum_lab import endpoint_handler as handler
from dialogsum_lab.cli import main
from dialogsum_lab.data import load_dialogsum
from dialogsum_lab.data_files import MAX_CSV_FIELD, MAX_JSON_DEPTH
from dialogsum_lab.errors import UserError
from dialogsum_lab.evaluation import read_predictions

DIALOGUE = "#Person1#: Is the shop open on Sunday?\n#Person2#: Only in the morning."
GOOD_LINE = json.dumps({"id": "a", "dialogue": DIALOGUE, "summary": "Sunday mornings."})


@contextmanager
def deadline(seconds: int = 30):
    """Fail, rather than hang the run, when a test blocks (opening a FIFO waits for a writer forever)."""
    def expire(*_):
        raise TimeoutError(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def special(tmp_path, kind: str, name: str = "x.jsonl"):
    path = tmp_path / name
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path.symlink_to("/dev/zero")
    else:
        path.mkdir()
    return path


SPECIAL = [("fifo", r"a FIFO \(named pipe\)"), ("device", "a character device"), ("folder", "a folder")]


@pytest.mark.parametrize(("kind", "says"), SPECIAL, ids=[k for k, _ in SPECIAL])
def test_a_data_file_that_is_no_regular_file_is_refused_unopened(tmp_path, kind, says):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "train.jsonl").write_text(GOOD_LINE + "\n")
    special(folder, kind, "test.jsonl")
    for given in [folder] if kind == "folder" else [folder, special(tmp_path, kind)]:
        with deadline(), pytest.raises(UserError, match=rf"(test|x)\.jsonl( \(a link to /dev/zero\))? is {says}, "
                                                        "not a regular file"):
            load_dialogsum(str(given))


def test_the_command_line_says_it_in_one_line_for_data_and_predictions(tmp_path, capsys):
    fifo = special(tmp_path, "fifo")
    with deadline():
        assert main(["score", "--predictions", str(fifo), "--data", str(fifo), "--out", str(tmp_path / "a")]) == 2
    assert f"{fifo} is a FIFO (named pipe), not a regular file" in one_line_error(capsys)
    with deadline():
        assert main(["score", "--predictions", str(fifo), "--data", "sample", "--out", str(tmp_path / "b")]) == 2
    assert f"{fifo} is a FIFO (named pipe), not a regular file" in one_line_error(capsys)


def test_a_predictions_file_on_a_device_is_refused_unread(tmp_path):
    with pytest.raises(UserError, match=r"x\.jsonl \(a link to /dev/zero\) is a character device"):
        read_predictions(special(tmp_path, "device"), load_dialogsum("sample")["test"])


def test_a_long_csv_field_is_read_and_one_over_the_limit_is_one_line(tmp_path):
    path = tmp_path / "long.csv"
    long = "#Person1#: " + "word " * 40_000  # 200,000 characters: over the csv module's default 131,072
    path.write_text(f'id,dialogue,summary\na,"{long}",s\nb,"{DIALOGUE}",t\n')
    assert load_dialogsum(str(path))["data"]["dialogue"][0] == long.strip()
    path.write_text(f'id,dialogue,summary\na,"{DIALOGUE}",s\nb,"{"x" * (MAX_CSV_FIELD + 1)}",t\n')  # a: lines 2-3
    with pytest.raises(UserError, match=rf"long\.csv, line 4: .*at most {MAX_CSV_FIELD:,} characters"):
        load_dialogsum(str(path))
    assert csv.field_size_limit() == 131_072  # the limit is raised for the lab's own reading only


NESTED = "[" * 100_000
DEEP = '{"id": "b", "dialogue": ' + "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1) + ', "summary": "s"}'
LONG_NUMBER = '{"id": ' + "7" * 5000 + ', "dialogue": "hi", "summary": "s"}'
SURROGATE = '{"id": "b", "dialogue": "#Person1#: caf\\ud800", "summary": "s"}'
FAULTS = [(NESTED, "nested more than"), (DEEP, "nested more than"), (LONG_NUMBER, "a number with more than 4,300"),
          (SURROGATE, r"'\\ud800', half of a UTF-16 surrogate pair")]
FAULT_IDS = ["unparseably-deep", "deep", "long-number", "lone-surrogate"]


@pytest.mark.parametrize(("line", "says"), FAULTS, ids=FAULT_IDS)
def test_json_lines_that_python_cannot_take_are_one_line_naming_the_line(tmp_path, line, says):
    path = tmp_path / "test.jsonl"
    path.write_text(GOOD_LINE + "\n" + line + "\n")
    with pytest.raises(UserError, match=rf"test\.jsonl, line 2: {says}"):
        load_dialogsum(str(path))
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text(line.replace('"dialogue"', '"prediction"') + "\n")
    with pytest.raises(UserError, match=rf"predictions\.jsonl, line 1: {says}"):
        read_predictions(predictions, load_dialogsum("sample")["test"])


@pytest.mark.parametrize(("line", "says"), FAULTS, ids=FAULT_IDS)
def test_json_documents_that_python_cannot_take_are_one_line_naming_the_file(tmp_path, line, says, capsys):
    path = tmp_path / "test.json"
    path.write_text(f"[{GOOD_LINE},\n{line}]")
    assert main(["score", "--predictions", "p.txt", "--data", str(path), "--out", str(tmp_path / "out")]) == 2
    assert f"{path}" in one_line_error(capsys)
    with pytest.raises(UserError, match=rf"test\.json(, line 2)?: {says}"):
        load_dialogsum(str(path))


@pytest.mark.parametrize("accept", ["application/json, text/plain, */*", "text/html, application/*;q=0.2",
                                    "text/plain;q=0.9, application/json;q=0.1", "Application/JSON", "*/*",
                                    "application/json; charset=utf-8", "", None])
def test_any_accept_header_that_takes_json_gets_json(accept):
    assert handler.output_fn({"summary": "x"}, accept) == ('{"summary": "x"}', "application/json")


@pytest.mark.parametrize("accept", ["text/csv", "text/plain, text/*", "text/html, application/json;q=0",
                                    "application/json;q=0, */*", "*/*;q=0", "application/json;q=zero"])
def test_an_accept_header_without_json_is_refused(accept):
    with pytest.raises(handler.RequestRefused) as refused:
        handler.output_fn({"summary": "x"}, accept)
    assert refused.value.status_code == 406


@pytest.mark.parametrize(("body", "says"), [
    ('{"inputs": ' + NESTED, "nested more than"),
    ('{"inputs": "hi", "parameters": {"num_beams": ' + "[" * 900 + "]" * 900 + "}}", "nested more than"),
    ('{"inputs": "hi", "parameters": {"num_beams": ' + "9" * 5000 + "}}", "number with more than 4,300 digits"),
    ('{"inputs": ["hi", "caf\\udc00"]}', r"dialogue 1 holds '\\udc00', half of a UTF-16 surrogate pair"),
    ('{"inputs": "caf\udc00"}'.encode("utf-8", "surrogatepass"), r"dialogue 0 holds '\\udc00'"),
], ids=["unparseably-deep", "deep", "long-number", "escaped-surrogate", "raw-surrogate"])
def test_request_bodies_python_cannot_take_are_a_400_in_one_short_line(body, says):
    with pytest.raises(handler.RequestRefused) as refused:
        handler.input_fn(body, "application/json")
    message = refused.value.message
    assert refused.value.status_code == 400 and "\n" not in message and len(message) < 200, message
    assert re.search(says, message), message


def test_a_content_type_in_capitals_is_json_too():
    assert handler.input_fn(b'{"inputs": "hi"}', "Application/JSON; charset=UTF-8")["dialogues"] == ["hi"]
