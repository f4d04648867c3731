"""Reading a data file as rows of DialogSum's fixed schema: JSON Lines, JSON or CSV as any tool saved them,
every field type-checked with the line it is on, DialogSum's two shapes mapped onto one, and repeated
dialogues folded by id (never by text).
"""

import csv
import io
import json
import logging
import os
import re
import stat
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from dialogsum_lab.errors import UserError

log = logging.getLogger(__name__)

FILE_TYPES = (".jsonl", ".json", ".csv")
# The Hub's test rows: one per reference summary of dialogue `test_N`.
HUB_REPEAT = re.compile(r"(?P<base>(?:train|dev|val|valid|validation|test)_\d+)_\d+")
MAX_CSV_FIELD = 4 * 2**20  # characters in one CSV field: a long dialogue is ~20,000 (the endpoint's limit)
MAX_JSON_DEPTH = 100  # a row nests 4 levels; deeper values would overflow Python's stack wherever they are printed
SPECIAL_FILES = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                 (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
SURROGATE = re.compile("[\ud800-\udfff]")


class UnreadableJSON(ValueError):
    """Valid JSON that Python cannot take as data; its message says why, in words."""


def read_rows(path: Path) -> list[tuple[int, dict]]:
    """(line number, row) pairs from a JSONL, JSON or CSV file, with errors that name file and line."""
    if path.suffix not in FILE_TYPES:
        raise UserError(f"{path}: unsupported file type '{path.suffix}'. Use JSON Lines (.jsonl), JSON or CSV.")
    text = read_text(path)
    if path.suffix == ".csv":
        return _csv_rows(path, text)
    if path.suffix == ".json":
        try:  # one JSON document (a list of rows, or columns); else it may be JSON Lines named .json
            document = load_json(text)
        except UnreadableJSON as err:
            raise UserError(f"{path}: {err}. Fix the file, or save it as JSON Lines, one row a line.") from err
        except json.JSONDecodeError as err:
            if text.lstrip().startswith("[") or "\n" not in text.strip():
                raise UserError(f"{path}: not valid JSON ({err}). Fix the file or save it as JSON Lines.") from err
        else:
            return _json_rows(path, document)
    return json_lines(path, text)


def read_text(path: Path) -> str:
    """A data file's text. Only a regular file is opened: a FIFO would block the read forever, and a device such
    as /dev/zero never ends, so anything else is refused, by what it is, before it is opened."""
    try:
        mode = os.stat(path).st_mode  # follows links: a link to a regular file is fine
    except OSError as err:
        raise UserError(f"{path}: cannot read the file ({err.strerror}). Check the path and its permissions.") from err
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in SPECIAL_FILES if test(mode)), "a special file")
        link = f" (a link to {os.path.realpath(path)})" if os.path.islink(path) else ""
        raise UserError(f"{path}{link} is {kind}, not a regular file. Save the data to a file and pass that.")
    try:
        return path.read_text(encoding="utf-8-sig")  # a byte-order mark (Excel, Windows editors) is no error
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read the file ({err}). Check the path, its permissions and that it "
                        "is UTF-8 text.") from err


def json_lines(path: Path, text: str) -> list[tuple[int, dict]]:
    """(line number, object) pairs of JSON Lines text, blank lines skipped; any line that is not one JSON object
    Python can take is one error naming its line."""
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = load_json(line)
        except UnreadableJSON as err:
            raise UserError(f"{path}, line {number}: {err}. Fix or delete that line.") from err
        except json.JSONDecodeError as err:
            raise UserError(f"{path}, line {number}: malformed JSON ({err.msg}). Each line must be one "
                            "JSON object; fix or delete that line.") from err
        if not isinstance(row, dict):
            raise UserError(f"{path}, line {number}: expected a JSON object, got {type(row).__name__}.")
        rows.append((number, _encodable(row, f"{path}, line {number}")))
    return rows


def load_json(text: str | bytes):
    """`json.loads`, refusing (as `UnreadableJSON`) the valid JSON Python cannot take: nesting deeper than
    MAX_JSON_DEPTH (past ~1,000 levels the parser overflows the stack) and integers longer than Python converts.
    Invalid JSON raises `json.JSONDecodeError` (or `UnicodeDecodeError` for bytes), as `json.loads` does."""
    try:
        value = json.loads(text)
    except RecursionError as err:
        raise UnreadableJSON(f"nested more than {MAX_JSON_DEPTH} levels deep") from err
    except ValueError as err:
        if isinstance(err, json.JSONDecodeError | UnicodeDecodeError):
            raise
        raise UnreadableJSON(f"a number with more than {sys.get_int_max_str_digits():,} digits (write it as "
                             "text, in quotes)") from err
    level, depth = [value], 0
    while level:  # breadth first, so that the check itself cannot overflow the stack
        depth += 1
        if depth > MAX_JSON_DEPTH:
            raise UnreadableJSON(f"nested more than {MAX_JSON_DEPTH} levels deep")
        level = [v for item in level if isinstance(item, dict | list)
                 for v in (item.values() if isinstance(item, dict) else item)]
    return value


def lone_surrogate(text: str) -> str | None:
    """The first lone UTF-16 surrogate in `text` (half of a pair; JSON may escape one, as "\\ud800"), written
    visibly, or None. It is no character: it cannot be written as UTF-8, nor tokenised."""
    found = SURROGATE.search(text)
    return ascii(found.group()) if found else None


def _encodable(row: dict, at: str) -> dict:
    """`row`, refused at once when any of its texts holds a lone surrogate, rather than when it is written."""
    found = lone_surrogate(json.dumps(row, ensure_ascii=False))
    if found:
        raise UserError(f"{at}: {found}, half of a UTF-16 surrogate pair, is no character on its own. Write the "
                        "character itself (or both halves of its pair) and fix that line.")
    return row


def _csv_rows(path: Path, text: str) -> list[tuple[int, dict]]:
    """Rows of CSV text, each numbered by its first line; fields up to MAX_CSV_FIELD characters (the csv
    module's own limit, 131,072, is shorter than some legitimate texts)."""
    previous = csv.field_size_limit(MAX_CSV_FIELD)
    try:
        # newline="" keeps line breaks inside quoted fields: DialogSum's turns are separated by them.
        reader, rows, start = csv.DictReader(io.StringIO(text, newline=""), delimiter=_delimiter(text)), [], 1
        if reader.fieldnames is None:  # reads the header
            return []
        start = reader.line_num + 1  # a row's number is its first line
        for row in reader:
            rows.append((start, row))
            start = reader.line_num + 1
        return rows
    except csv.Error as err:
        raise UserError(f"{path}, line {start}: cannot read this CSV row ({err}; a field holds at most "
                        f"{MAX_CSV_FIELD:,} characters). Fix that row.") from err
    finally:
        csv.field_size_limit(previous)


def _delimiter(text: str) -> str:
    """The CSV file's field separator, read from its header: a comma, or the semicolon or tab that spreadsheet
    programs write in many locales."""
    header = text.split("\n", 1)[0]
    return max((",", ";", "\t"), key=lambda d: (header.count(d), d == ","))


def _json_rows(path: Path, document) -> list[tuple[int, dict]]:
    """Rows of one JSON document: a list of objects, or columns (`{"dialogue": [...], "summary": [...]}`), either
    of them possibly under a single key such as `{"data": [...]}`, or one row's object."""
    if isinstance(document, dict) and isinstance(document.get("dialogue"), str):
        document = [document]
    if isinstance(document, dict) and len(document) == 1 and isinstance(next(iter(document.values())), list | dict):
        document = next(iter(document.values()))
    if isinstance(document, dict) and document and all(isinstance(v, list) for v in document.values()):
        if len({len(v) for v in document.values()}) != 1:
            raise UserError(f"{path}: its columns have different lengths. Give every column one value per row.")
        document = [dict(zip(document, values, strict=True)) for values in zip(*document.values(), strict=True)]
    if not isinstance(document, list) or not all(isinstance(row, dict) for row in document):
        raise UserError(f"{path}: expected rows (a list of objects with 'dialogue' and 'summary', or one list per "
                        f"column), got a JSON {type(document).__name__}. Save it as JSON Lines, one row a line.")
    return [(i + 1, _encodable(row, f"{path}, line {i + 1}")) for i, row in enumerate(document)]


def normalise(rows: Iterable[tuple[int, dict]], where: str, skip_invalid: bool) -> list[dict]:
    """Map either DialogSum shape onto the fixed schema, type-checking each field, then fold repeated dialogues.

    Column names are matched without case, surrounding spaces or invisible characters (a spreadsheet's byte-order
    mark, a no-break space). A `summary` (or `topic`) holding a list of texts gives that many references, as
    `summary1..n` do; a `dialogue` holding a list of texts is its turns, one a line.
    """
    out, skipped = [], 0
    for number, raw in rows:
        row = {_column(k): v for k, v in raw.items()}
        if "dialogue" not in row:
            raise UserError(f"{where}: no 'dialogue' column (found: {', '.join(map(ascii, raw)) or 'none'}). "
                            "Rename the column holding the conversation to 'dialogue'.")
        at = f"{where}, line {number}"
        references = _numbered(row, "summary", at)  # None: no summary column (dialogues to summarise, not to score)
        dialogue = _text(row["dialogue"], "dialogue", at, turns=True)
        problem = "empty dialogue" if not dialogue else "empty summary" if references == [] else None
        if problem:
            if not skip_invalid:
                raise UserError(f"{at}: {problem}. Fill it in or remove the row (--skip-invalid drops such rows "
                                "and reports how many).")
            skipped += 1
            continue
        ident = _ident(row.get("id", row.get("fname")), at)
        topics = _numbered(row, "topic", at) or []
        references = references or []
        out.append({"id": ident or f"{Path(where).stem}_{number}", "dialogue": dialogue,
                    "summary": references[0] if references else "", "references": references,
                    "topic": topics[0] if topics else "", "topics": topics, "facts": _facts(row.get("facts"), at),
                    "line": number, "foldable": ident is not None})
    if skipped:
        log.warning("%s: skipped %d invalid row(s) (empty dialogue or summary) as --skip-invalid asks", where, skipped)
    return _fold(out, where)


INVISIBLE = re.compile("[\ufeff\u200b-\u200d\u2060\u00a0]")


def _column(name) -> str:
    return INVISIBLE.sub("", str(name)).strip().lower()


def _text(value, field: str, at: str, turns: bool = False) -> str:
    """A text field, stripped, with Windows line ends made plain; a list of texts is turns (`turns`) or refused."""
    if value is None:
        return ""
    if turns and isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = "\n".join(v.strip() for v in value)
    if not isinstance(value, str):
        kind = type(value).__name__
        raise UserError(f"{at}: '{field}' must be text{' (or a list of turns)' if turns else ''}, found {kind} "
                        f"{str(value)[:40]!r}. Fix that row.")
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


def _ident(value, at: str) -> str | None:
    """An id as text (whole numbers, as spreadsheets save them, too), or None when there is none."""
    if value is None or isinstance(value, str) and not value.strip():
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise UserError(f"{at}: 'id' must be text or a whole number, found {type(value).__name__} "
                        f"{str(value)[:40]!r}. Fix that row.")
    return str(value).strip()


def _numbered(row: dict, name: str, at: str) -> list[str] | None:
    """The non-empty texts of `name` (a text or a list of texts), or of `name1`, `name2`, ... (DialogSum's test
    file); None when there is no such column."""
    keys = [name] if name in row else sorted((k for k in row if re.fullmatch(rf"{name}\d+", k)),
                                             key=lambda k: int(k[len(name):]))
    if not keys:
        return None
    values = []
    for key in keys:
        items = row[key] if isinstance(row[key], list) else [row[key]]
        if not all(item is None or isinstance(item, str) for item in items):
            raise UserError(f"{at}: '{key}' must be text or a list of texts, found {str(row[key])[:40]!r}. Fix that "
                            "row.")
        values += [_text(item, key, at) for item in items]
    return [v for v in values if v]


def _facts(value, at: str) -> list[dict]:
    """The facts a data generator recorded (a list of {slot, value, pool}; the detail view scores them), or none."""
    if value is None or value == "":
        return []
    if not isinstance(value, list) or not all(isinstance(f, dict) and isinstance(f.get("value"), str)
                                              for f in value):
        raise UserError(f"{at}: 'facts' must be a list of objects with a text 'value' (and 'slot', 'pool'), found "
                        f"{str(value)[:40]!r}. Fix that row or drop the column.")
    return [{"slot": str(f.get("slot", "")), "value": f["value"], "pool": str(f.get("pool") or "")} for f in value]


def _fold(rows: list[dict], where: str) -> list[dict]:
    """One row per id, in first-seen order; the Hub's `test_N_k` rows fold into `test_N` with every reference.

    Ids decide, never text. Two rows with the same id are an error, and so are
    Hub rows of one dialogue whose texts disagree.
    """
    repeated = sorted(i for i, n in Counter(r["id"] for r in rows).items() if n > 1)
    if repeated:
        raise UserError(f"{where}: id(s) {', '.join(repeated[:5])} appear on more than one row. Ids must be unique, "
                        "or scores land on the wrong dialogue: give each dialogue its own id.")
    groups: dict[str, list[dict]] = {}
    for row in rows:
        match = HUB_REPEAT.fullmatch(row["id"]) if row["foldable"] else None
        groups.setdefault(match["base"] if match else row["id"], []).append(row)
    folded = []
    for key, members in groups.items():
        if len({" ".join(m["dialogue"].split()) for m in members}) > 1:
            lines = ", ".join(f"{m['id']} (line {m['line']})" for m in members[:4])
            raise UserError(f"{where}: rows {lines} are references of one dialogue '{key}' by their ids, but their "
                            "dialogues differ. Give distinct dialogues distinct ids.")
        topics = [t for m in members for t in m["topics"]]
        folded.append(members[0] | {"id": key, "references": [r for m in members for r in m["references"]],
                                    "topics": topics, "topic": topics[0] if topics else ""})
    return folded
