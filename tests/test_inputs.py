"""Input fields of the wrong shape, and files as other tools save them (spreadsheets, Windows editors, other JSON
writers): one line naming the line and the fix, or exactly the rows the plain file gives."""

import csv
import io
import json

import pytest

from dialogsum_lab.data import load_dialogsum
from dialogsum_lab.errors import UserError

DIALOGUE = "#Person1#: Is the shop open on Sunday?\n#Person2#: Only in the morning."


def rows_of(path) -> list[dict]:
    return [{k: r[k] for k in ("id", "dialogue", "references", "topics")} for r in load_dialogsum(str(path))["data"]]


@pytest.mark.parametrize(("row", "message"), [
    ({"dialogue": 5, "summary": "s"}, r"line 2: 'dialogue' must be text \(or a list of turns\), found int '5'"),
    ({"dialogue": {"a": 1}, "summary": "s"}, r"line 2: 'dialogue' must be text .* found dict"),
    ({"dialogue": DIALOGUE, "summary": 3.5}, r"line 2: 'summary' must be text or a list of texts, found '3.5'"),
    ({"dialogue": DIALOGUE, "summary": ["ok", 7]}, r"line 2: 'summary' must be text or a list of texts"),
    ({"dialogue": DIALOGUE, "summary": "s", "topic": ["a", {"b": 1}]}, r"line 2: 'topic' must be text"),
    ({"id": 1.5, "dialogue": DIALOGUE, "summary": "s"}, r"line 2: 'id' must be text or a whole number, found float"),
    ({"id": True, "dialogue": DIALOGUE, "summary": "s"}, r"line 2: 'id' must be text or a whole number"),
], ids=["dialogue-number", "dialogue-object", "summary-number", "summary-list-with-number", "topic-object",
        "id-float", "id-bool"])
def test_fields_of_the_wrong_type_are_one_line_naming_the_line(tmp_path, row, message):
    path = tmp_path / "test.jsonl"
    path.write_text(json.dumps({"dialogue": DIALOGUE, "summary": "fine"}) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(UserError, match=message):
        load_dialogsum(str(path))


def test_lists_mean_several_references_and_turns(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps({"id": 7, "dialogue": ["#Person1#: Hi.", "#Person2#: Hello."],
                                "summary": ["They greet.", " ", "Two people say hello."], "topic": ["greeting"]}))
    (row,) = rows_of(path)
    assert row == {"id": "7", "dialogue": "#Person1#: Hi.\n#Person2#: Hello.",
                   "references": ["They greet.", "Two people say hello."], "topics": ["greeting"]}


ROWS = [{"id": "test_0_1", "dialogue": DIALOGUE, "summary": "The shop opens Sunday mornings.", "topic": "shop"},
        {"id": "test_0_2", "dialogue": DIALOGUE, "summary": "Sunday: mornings only.", "topic": "shop"},
        {"id": "test_1_1", "dialogue": "#Person1#: Tea?\n#Person2#: Yes, please.", "summary": "Tea is offered.",
         "topic": "tea"}]


def csv_text(rows, delimiter=",", line_end="\n") -> str:
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), delimiter=delimiter, lineterminator=line_end)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: v.replace("\n", line_end) for k, v in row.items()})
    return buffer.getvalue()


def test_files_as_spreadsheets_and_windows_editors_save_them_load_like_the_plain_one(tmp_path):
    plain = tmp_path / "plain.csv"
    plain.write_text(csv_text(ROWS), newline="")
    expected = rows_of(plain)
    assert [r["id"] for r in expected] == ["test_0", "test_1"] and len(expected[0]["references"]) == 2
    saved = {"excel-bom-crlf.csv": ("\ufeff" + csv_text(ROWS, line_end="\r\n")).encode(),
             "excel-semicolon.csv": ("\ufeff" + csv_text(ROWS, delimiter=";", line_end="\r\n")).encode(),
             "tabs.csv": csv_text(ROWS, delimiter="\t").encode(),
             "notepad-bom.jsonl": ("\ufeff" + "".join(json.dumps(r) + "\r\n" for r in ROWS)).encode(),
             "pretty.json": json.dumps(ROWS, indent=4).encode(),
             "headers.csv": csv_text([{f" {k.title()}\u00a0": v for k, v in r.items()} for r in ROWS]).encode()}
    for name, content in saved.items():
        (tmp_path / name).write_bytes(content)
        assert rows_of(tmp_path / name) == expected, name


def test_a_column_named_with_an_invisible_character_is_shown_visibly(tmp_path):
    path = tmp_path / "odd.jsonl"
    path.write_text(json.dumps({"dialogu\u0435": DIALOGUE, "summary": "s"}) + "\n")  # a Cyrillic 'е'
    with pytest.raises(UserError, match=r"no 'dialogue' column \(found: 'dialogu\\u0435', 'summary'\)"):
        load_dialogsum(str(path))
