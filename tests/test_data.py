import csv
import json
import logging

import pytest

from dialogsum_lab.data import (
    COLUMNS,
    build_multitask,
    build_prompts,
    load_dialogsum,
    make_collator,
    references_for,
    select_split,
    tokenize,
)
from dialogsum_lab.errors import UserError

DIALOGUE_A = "#Person1#: Hi, can I borrow your pen?\n#Person2#: Sure, here it is."
DIALOGUE_B = "#Person1#: Is the shop open on Sunday?\n#Person2#: Only in the morning."


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def write_csv(path, rows):
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_sample_has_fixed_schema_and_three_splits():
    data = load_dialogsum("sample")
    assert set(data) == {"train", "validation", "test"}
    assert sum(len(s) for s in data.values()) >= 60
    for split in data.values():
        assert split.column_names == list(COLUMNS)
    assert all(2 <= len(r) <= 3 for r in data["test"]["references"])
    assert all(r[0] == s for r, s in zip(data["test"]["references"], data["test"]["summary"], strict=True))


def test_hub_csv_shape_folds_repeated_test_dialogues(tmp_path):
    rows = [
        {"id": "test_0_1", "dialogue": DIALOGUE_A, "summary": "P2 lends a pen.", "topic": "pen"},
        {"id": "test_0_2", "dialogue": DIALOGUE_A, "summary": "P1 borrows a pen.", "topic": "pen"},
        {"id": "test_0_3", "dialogue": DIALOGUE_A, "summary": "A pen is lent.", "topic": "pen"},
        {"id": "test_1_1", "dialogue": DIALOGUE_B, "summary": "The shop opens Sunday mornings.", "topic": "shop"},
    ]
    write_csv(tmp_path / "test.csv", rows)
    write_csv(tmp_path / "train.csv", rows[3:])
    data = load_dialogsum(str(tmp_path))
    assert set(data) == {"train", "test"}
    test = data["test"]
    assert len(test) == 2
    assert test[0]["id"] == "test_0"
    assert test[0]["references"] == ["P2 lends a pen.", "P1 borrows a pen.", "A pen is lent."]
    assert test[0]["summary"] == "P2 lends a pen."
    assert test[1]["references"] == ["The shop opens Sunday mornings."]


def test_original_jsonl_shape_with_numbered_summaries(tmp_path):
    write_jsonl(tmp_path / "dialogsum.test.jsonl", [
        {"fname": "test_7", "dialogue": DIALOGUE_A, "summary1": "one", "summary2": "two", "summary3": "three",
         "topic1": "pen", "topic2": "borrowing", "topic3": "office"}])
    write_jsonl(tmp_path / "dialogsum.dev.jsonl", [
        {"fname": "dev_0", "dialogue": DIALOGUE_B, "summary": "shop hours", "topic": "shop"}])
    data = load_dialogsum(str(tmp_path))
    assert set(data) == {"test", "validation"}
    row = data["test"][0]
    assert (row["id"], row["references"], row["summary"], row["topic"]) == ("test_7", ["one", "two", "three"],
                                                                          "one", "pen")


def test_single_file_is_the_split_its_name_says(tmp_path):
    file = write_jsonl(tmp_path / "dialogsum.dev.jsonl", [{"fname": "dev_0", "dialogue": DIALOGUE_B,
                                                           "summary": "s", "topic": "t"}])
    data = load_dialogsum(str(file))
    assert len(select_split(data, "validation")) == 1
    with pytest.raises(UserError, match="split 'test' is not in this data .*validation"):
        select_split(data, "test")
    unnamed = write_jsonl(tmp_path / "mine.jsonl", [{"id": "a", "dialogue": DIALOGUE_B, "summary": "s"}])
    assert len(select_split(load_dialogsum(str(unnamed)), "test")) == 1


@pytest.mark.parametrize(("content", "message"), [
    ('{"dialogue": "x", "summary": "y"}\n{"dialogue": "x", summary}\n', r"line 2: malformed JSON"),
    ('{"text": "x", "summary": "y"}\n', r"no 'dialogue' column \(found: 'text', 'summary'\)"),
    ('{"dialogue": "x", "summary": "y"}\n{"dialogue": "  ", "summary": "y"}\n', r"line 2: empty dialogue"),
    ('{"dialogue": "x", "summary": ""}\n', r"line 1: empty summary"),
    ('[1, 2]\n', r"line 1: expected a JSON object"),
])
def test_bad_input_names_file_line_and_fix(tmp_path, content, message):
    file = tmp_path / "bad.jsonl"
    file.write_text(content)
    with pytest.raises(UserError, match=message) as err:
        load_dialogsum(str(file))
    assert str(file) in str(err.value)


def test_unreadable_and_missing_files(tmp_path):
    binary = tmp_path / "test.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(UserError, match="cannot read the file"):
        load_dialogsum(str(binary))
    with pytest.raises(UserError, match="does not exist"):
        load_dialogsum(str(tmp_path / "nope.jsonl"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no data files named by split"):
        load_dialogsum(str(tmp_path / "empty"))


def test_skip_invalid_counts_and_reports(tmp_path, caplog):
    file = write_jsonl(tmp_path / "test.jsonl", [
        {"id": "1", "dialogue": DIALOGUE_A, "summary": "ok"},
        {"id": "2", "dialogue": "", "summary": "no dialogue"},
        {"id": "3", "dialogue": DIALOGUE_B, "summary": ""}])
    with caplog.at_level(logging.WARNING):
        data = load_dialogsum(str(file), skip_invalid=True)
    assert data["test"]["id"] == ["1"]
    assert "skipped 2 invalid row(s)" in caplog.text


def test_prompts_use_every_reference_and_multitask_mixes_both_tasks():
    test = load_dialogsum("sample")["test"].select(range(2))
    pairs = build_prompts(test)
    assert len(pairs) == sum(len(r) for r in test["references"])
    assert pairs[0]["prompt"].startswith("Summarize the following conversation.\n\n#Person1#:")
    assert pairs[0]["prompt"].endswith("\n\nSummary: ")
    mixed = build_multitask(test)
    assert set(mixed["task"]) == {"summary", "topic"}
    assert references_for(test, "topic") == [list(t) for t in test["topics"]]
    with pytest.raises(UserError, match="no {dialogue} placeholder"):
        build_prompts(test, template="Summarize:")


def test_collator_pads_dynamically_and_masks_label_padding(tiny):
    model, tokenizer = tiny
    train = load_dialogsum("sample")["train"].select(range(4))
    features = tokenize(build_prompts(train), tokenizer, max_source_length=512, max_target_length=128)
    batch = make_collator(tokenizer, model)([features[i] for i in range(4)])
    label_lengths = [len(features[i]["labels"]) for i in range(4)]
    assert batch["labels"].shape[1] == max(label_lengths)  # padded to the batch, not to 128/512
    assert batch["input_ids"].shape[1] == max(len(features[i]["input_ids"]) for i in range(4))
    for row, n in zip(batch["labels"], label_lengths, strict=True):
        assert (row[n:] == -100).all() and (row[:n] != -100).all()
    assert "decoder_input_ids" in batch
    assert (batch["decoder_input_ids"][:, 0] == model.config.decoder_start_token_id).all()


def test_truncation_limits_source_and_target(tiny):
    _, tokenizer = tiny
    train = load_dialogsum("sample")["train"].select(range(3))
    features = tokenize(build_prompts(train), tokenizer, max_source_length=16, max_target_length=5)
    assert max(len(x) for x in features["input_ids"]) == 16
    assert max(len(x) for x in features["labels"]) == 5


def test_hub_dataset_offline_is_a_clear_error():
    # conftest sets HF_DATASETS_OFFLINE: the real Hub code path runs and fails the way a user without network sees it
    with pytest.raises(UserError, match="could not load dataset 'knkarthick/dialogsum' from the Hugging Face Hub.*"
                                        "--data sample"):
        load_dialogsum("knkarthick/dialogsum")


# Two distinct dialogues whose texts differ only in whitespace, as DialogSum's test_173/test_337.
TWIN = "#Person1#: Where is the station?\n#Person2#: Turn left at the bank."
TWIN_SPACED = "#Person1#: Where is the station?\n#Person2#:  Turn left at the bank."


def twin_rows_hub() -> list[dict]:
    return [{"id": f"test_{n}_{k}", "dialogue": text, "summary": f"{n} summary {k}", "topic": f"{n} topic {k}"}
            for n, text in ((173, TWIN), (337, TWIN_SPACED)) for k in (1, 2, 3)]


def twin_rows_original() -> list[dict]:
    return [{"fname": f"test_{n}", "dialogue": text, **{f"summary{k}": f"{n} summary {k}" for k in (1, 2, 3)},
             **{f"topic{k}": f"{n} topic {k}" for k in (1, 2, 3)}}
            for n, text in ((173, TWIN), (337, TWIN_SPACED))]


@pytest.mark.parametrize("shape", ["hub_csv", "original_jsonl"])
def test_distinct_dialogues_with_equal_text_stay_apart(tmp_path, shape):
    from dialogsum_lab.evaluation import read_predictions

    file = (write_csv(tmp_path / "test.csv", twin_rows_hub()) if shape == "hub_csv"
            else write_jsonl(tmp_path / "dialogsum.test.jsonl", twin_rows_original()))
    test = load_dialogsum(str(file))["test"]
    assert test["id"] == ["test_173", "test_337"]
    for row, n in zip(test, (173, 337), strict=True):
        assert row["references"] == [f"{n} summary {k}" for k in (1, 2, 3)]
        assert row["topics"] == [f"{n} topic {k}" for k in (1, 2, 3)] and row["topic"] == f"{n} topic 1"
    # A published system's output, one line per dialogue, and a JSONL keyed by fname both line up.
    (tmp_path / "system.txt").write_text("first\nsecond\n")
    assert read_predictions(tmp_path / "system.txt", test) == ["first", "second"]
    write_jsonl(tmp_path / "system.jsonl", [{"id": "test_337", "prediction": "b"},
                                            {"id": "test_173", "prediction": "a"}])
    assert read_predictions(tmp_path / "system.jsonl", test) == ["a", "b"]


def test_both_shapes_load_to_the_same_rows(tmp_path):
    hub = load_dialogsum(str(write_csv(tmp_path / "test.csv", twin_rows_hub())))["test"]
    original = load_dialogsum(str(write_jsonl(tmp_path / "dialogsum.test.jsonl", twin_rows_original())))["test"]
    assert hub.to_list() == original.to_list()


def test_hub_rows_of_one_dialogue_must_agree_on_the_text(tmp_path):
    rows = twin_rows_hub()
    rows[1]["dialogue"] = "#Person1#: Something else entirely."
    with pytest.raises(UserError, match=r"test_173_1 \(line 2\), test_173_2 \(line 4\).*dialogues differ"):
        load_dialogsum(str(write_csv(tmp_path / "test.csv", rows)))


def test_repeated_ids_are_refused_with_their_names(tmp_path):
    file = write_jsonl(tmp_path / "test.jsonl", [
        {"id": "a", "dialogue": DIALOGUE_A, "summary": "x"}, {"id": "b", "dialogue": DIALOGUE_B, "summary": "y"},
        {"id": "a", "dialogue": DIALOGUE_B, "summary": "z"}])
    with pytest.raises(UserError, match=r"id\(s\) a appear on more than one row"):
        load_dialogsum(str(file))


def test_rows_without_ids_never_fold(tmp_path):
    file = write_jsonl(tmp_path / "test_1.jsonl", [{"dialogue": TWIN, "summary": "x"},
                                                   {"dialogue": TWIN, "summary": "y"}])
    assert load_dialogsum(str(file))["test"]["id"] == ["test_1_1", "test_1_2"]


def test_csv_keeps_newlines_inside_quoted_fields_like_jsonl(tmp_path):
    rows = [{"id": f"train_{i}", "dialogue": d, "summary": f"Summary {i}.\nSecond line.", "topic": "t"}
            for i, d in enumerate((DIALOGUE_A, DIALOGUE_B, "#Person1#: One \"quoted\", line.\n\n#Person2#: Two."))]
    from_csv = load_dialogsum(str(write_csv(tmp_path / "train.csv", rows)))["train"]
    from_jsonl = load_dialogsum(str(write_jsonl(tmp_path / "train.jsonl", rows)))["train"]
    assert from_csv.to_list() == from_jsonl.to_list()
    assert from_csv[0]["dialogue"] == DIALOGUE_A  # the turn break survives
