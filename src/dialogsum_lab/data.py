"""DialogSum in one fixed schema, the lab's prompts, and tokenisation.

Every source (the Hub, a folder, a file, the shipped sample) ends up as a
`DatasetDict` of rows with `id`, `dialogue`, `summary`, `references`, `topic`,
`topics`. The Hub/CSV test split repeats a dialogue once per reference summary
(ids `test_N_1`, `test_N_2`, ...) and the original JSONL keeps `summary1..3`
on one row; both fold into one row `test_N` whose `references` lists every
human summary, so each dialogue is scored once. Rows are told apart by id,
never by text: DialogSum holds distinct dialogues whose texts differ only in
whitespace.
"""

import csv
import io
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from datasets import Dataset, DatasetDict, concatenate_datasets
from transformers import DataCollatorForSeq2Seq, PreTrainedTokenizerBase

from dialogsum_lab.config import CHANNELS_SOURCE, DEFAULT_SOURCE, SAMPLE_DIR, SAMPLE_SOURCE
from dialogsum_lab.errors import UserError
from dialogsum_lab.prompts import TASK_PROMPTS

log = logging.getLogger(__name__)

# task name -> (prompt template, column holding the target texts)
TASKS = {"summary": (TASK_PROMPTS["summary"], "references"), "topic": (TASK_PROMPTS["topic"], "topics")}
SPLIT_NAMES = {"train": "train", "dev": "validation", "val": "validation", "valid": "validation",
               "validation": "validation", "test": "test"}
UNNAMED_SPLIT = "data"  # key of a single file whose name names no split: it serves any split
FILE_TYPES = (".jsonl", ".json", ".csv")
COLUMNS = ("id", "dialogue", "summary", "references", "topic", "topics")
# The Hub's test rows: one per reference summary of dialogue `test_N`.
HUB_REPEAT = re.compile(r"(?P<base>(?:train|dev|val|valid|validation|test)_\d+)_\d+")


def load_dialogsum(source: str = DEFAULT_SOURCE, skip_invalid: bool = False) -> DatasetDict:
    """Load DialogSum from the Hub id, a local folder or file, or `sample`.

    A folder holds one file per split, named by the split (`train.csv`,
    `dialogsum.dev.jsonl`, ...). A single file is one split: the one its name
    says, or, if its name says none, whichever split is asked for (see
    `select_split`). Rows with an empty dialogue or summary are an error unless
    `skip_invalid`, which drops them and logs how many.
    """
    if source == SAMPLE_SOURCE:
        return _load_local(SAMPLE_DIR, skip_invalid)
    if source == CHANNELS_SOURCE:
        return _load_channels(skip_invalid)
    path = Path(source).expanduser()
    if path.exists():
        return _load_local(path, skip_invalid)
    if not is_hub_id(source):
        raise UserError(f"data source '{source}' does not exist. Pass an existing file or folder, "
                        f"'{SAMPLE_SOURCE}' for the shipped sample, or a Hub id such as {DEFAULT_SOURCE}.")
    return _load_hub(source, skip_invalid)


def is_hub_id(source: str) -> bool:
    """`owner/name` that is no local path, no data file name and not a source of this project."""
    return (source not in (SAMPLE_SOURCE, CHANNELS_SOURCE) and not Path(source).expanduser().exists()
            and Path(source).suffix not in FILE_TYPES and not source.startswith((".", "/", "~", "s3://"))
            and source.count("/") == 1)


def select_split(data: DatasetDict, split: str) -> Dataset:
    """Return one split, with an error naming the splits that do exist."""
    if split in data:
        return data[split]
    if list(data) == [UNNAMED_SPLIT]:
        return data[UNNAMED_SPLIT]
    raise UserError(f"split '{split}' is not in this data (it has: {', '.join(data)}). "
                    f"Pass --split with one of those.")


def _load_hub(source: str, skip_invalid: bool) -> DatasetDict:
    from datasets import load_dataset

    try:
        hub = load_dataset(source)
    except Exception as err:  # offline, unknown id, auth: all end the same way for the user
        reason = " ".join(str(err).split())[:200]
        raise UserError(f"could not load dataset '{source}' from the Hugging Face Hub ({type(err).__name__}: "
                        f"{reason}). Offline? Pass a local file or folder with --data, or --data sample.") from err
    return DatasetDict({
        SPLIT_NAMES.get(name, name): _to_dataset(_normalise(
            ((i + 2, row) for i, row in enumerate(split)), f"{source}[{name}]", skip_invalid))
        for name, split in hub.items()})


def _load_local(path: Path, skip_invalid: bool) -> DatasetDict:
    files = _split_files(path) if path.is_dir() else {_split_of(path) or UNNAMED_SPLIT: path}
    return DatasetDict({split: _to_dataset(_normalise(_read_rows(file), str(file), skip_invalid))
                        for split, file in files.items()})


def _load_channels(skip_invalid: bool) -> DatasetDict:
    """A SageMaker job's channels: each channel folder's data file is that split (the train channel may carry the
    other splits too, as files named by split)."""
    from dialogsum_lab.sagemaker_jobs import CHANNELS, channel_folders

    folders = channel_folders()
    if "train" not in folders:
        raise UserError(f"data is {CHANNELS_SOURCE}, but {CHANNELS['train']} is not set: this is not a SageMaker "
                        "training job with a train channel. Pass --data.")
    files: dict[str, Path] = {}
    for split, folder in folders.items():
        found = sorted(f for f in folder.iterdir() if f.suffix in FILE_TYPES) if folder.is_dir() else []
        named = {_split_of(f): f for f in found if _split_of(f)}
        if split == "train":
            files |= named
        own = named.get(split) or (found[0] if len(found) == 1 else None)
        if own is None:
            raise UserError(f"channel {split} ({folder}) holds {len(found)} data files and none named {split}. "
                            f"Put one .jsonl/.json/.csv file in it, or name it {split}.jsonl.")
        files[split] = own
    return DatasetDict({split: _to_dataset(_normalise(_read_rows(file), str(file), skip_invalid))
                        for split, file in files.items()})


def _split_of(path: Path) -> str | None:
    """The split a file name names: `dialogsum.dev.jsonl` -> validation, `train.csv` -> train."""
    words = re.split(r"[._\-\s]+", path.name.lower())
    return next((SPLIT_NAMES[w] for w in words if w in SPLIT_NAMES), None)


def _split_files(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for file in sorted(folder.iterdir()):
        split = _split_of(file)
        if file.suffix not in FILE_TYPES or split is None:
            continue
        if split in files:
            raise UserError(f"{folder} has two files for the {split} split ({files[split].name}, {file.name}). "
                            "Keep one, or pass the file you want with --data.")
        files[split] = file
    if not files:
        raise UserError(f"{folder} has no data files named by split (train/dev/validation/test with "
                        f"{'/'.join(FILE_TYPES)}). Rename them, or pass a single file with --data.")
    return files


def _read_rows(path: Path) -> list[tuple[int, dict]]:
    """(line number, row) pairs from a JSONL, JSON or CSV file, with errors that name file and line."""
    if path.suffix not in FILE_TYPES:
        raise UserError(f"{path}: unsupported file type '{path.suffix}'. Use JSON Lines (.jsonl), JSON or CSV.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read the file ({err}). Check the path, its permissions and that it "
                        "is UTF-8 text.") from err
    if path.suffix == ".csv":
        # newline="" keeps line breaks inside quoted fields: DialogSum's turns are separated by them.
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if reader.fieldnames is None:  # reads the header
            return []
        rows, start = [], reader.line_num + 1  # a row's number is its first line
        for row in reader:
            rows.append((start, row))
            start = reader.line_num + 1
        return rows
    if path.suffix == ".json":
        try:  # one JSON document (a list of rows, or columns); else it may be JSON Lines named .json
            return _json_rows(path, json.loads(text))
        except json.JSONDecodeError as err:
            if text.lstrip().startswith("[") or "\n" not in text.strip():
                raise UserError(f"{path}: not valid JSON ({err}). Fix the file or save it as JSON Lines.") from err
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}, line {number}: malformed JSON ({err.msg}). Each line must be one "
                            "JSON object; fix or delete that line.") from err
        if not isinstance(row, dict):
            raise UserError(f"{path}, line {number}: expected a JSON object, got {type(row).__name__}.")
        rows.append((number, row))
    return rows


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
    return [(i + 1, row) for i, row in enumerate(document)]


def _normalise(rows: Iterable[tuple[int, dict]], where: str, skip_invalid: bool) -> list[dict]:
    """Map either DialogSum shape onto the fixed schema, then fold repeated dialogues."""
    out, skipped = [], 0
    for number, row in rows:
        if "dialogue" not in row:
            raise UserError(f"{where}: no 'dialogue' column (found: {', '.join(row) or 'none'}). "
                            "Rename the column holding the conversation to 'dialogue'.")
        references = _numbered(row, "summary")
        if references is None:
            raise UserError(f"{where}: no 'summary' or 'summary1' column (found: {', '.join(row)}). "
                            "Rename the column holding the human summary to 'summary'.")
        dialogue = (row["dialogue"] or "").strip()
        problem = "empty dialogue" if not dialogue else "empty summary" if not references else None
        if problem:
            if not skip_invalid:
                raise UserError(f"{where}, line {number}: {problem}. Fill it in or remove the row "
                                "(--skip-invalid drops such rows and reports how many).")
            skipped += 1
            continue
        ident = row.get("id", row.get("fname"))
        ident = str(ident).strip() if ident is not None and str(ident).strip() else None
        topics = _numbered(row, "topic") or []
        out.append({"id": ident or f"{Path(where).stem}_{number}", "dialogue": dialogue, "summary": references[0],
                    "references": references, "topic": topics[0] if topics else "", "topics": topics,
                    "line": number, "foldable": ident is not None})
    if skipped:
        log.warning("%s: skipped %d invalid row(s) (empty dialogue or summary) as --skip-invalid asks", where, skipped)
    return _fold(out, where)


def _numbered(row: dict, name: str) -> list[str] | None:
    """The non-empty values of `name`, or of `name1`, `name2`, ... (DialogSum's test file); None if neither."""
    keys = [name] if name in row else sorted((k for k in row if re.fullmatch(rf"{name}\d+", k)),
                                             key=lambda k: int(k[len(name):]))
    if not keys:
        return None
    return [str(row[k]).strip() for k in keys if row[k] is not None and str(row[k]).strip()]


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


def _to_dataset(rows: list[dict]) -> Dataset:
    if not rows:
        return Dataset.from_dict({c: [] for c in COLUMNS})
    return Dataset.from_list([{c: row[c] for c in COLUMNS} for row in rows])


def head(dataset: Dataset, n: int | None) -> Dataset:
    """The first `n` rows (all of them when `n` is None or larger than the split)."""
    return dataset if n is None else dataset.select(range(min(n, len(dataset))))


def build_prompts(dataset: Dataset, task: str = "summary", template: str | None = None) -> Dataset:
    """Training pairs (`prompt`, `target`, `task`) for `summary` or `topic`.

    A dialogue with several human summaries gives one pair per summary, so
    folding repeated dialogues never throws training targets away.
    """
    if task not in TASKS:
        raise UserError(f"unknown task '{task}'. Choose one of: {', '.join(TASKS)}.")
    default_template, target_column = TASKS[task]
    template = template or default_template
    if "{dialogue}" not in template:
        raise UserError(f"prompt template {template!r} has no {{dialogue}} placeholder. Add one.")

    def pairs(batch: dict) -> dict:
        out: dict[str, list] = {"prompt": [], "target": [], "task": []}
        for dialogue, targets in zip(batch["dialogue"], batch[target_column], strict=True):
            for target in (targets if isinstance(targets, list) else [targets]):
                out["prompt"].append(template.format(dialogue=dialogue))
                out["target"].append(target)
                out["task"].append(task)
        return out

    return dataset.map(pairs, batched=True, remove_columns=dataset.column_names)


def build_multitask(dataset: Dataset, seed: int = 0, template: str | None = None) -> Dataset:
    """Summaries and topics from the same dialogues, shuffled together (multi-task instruction tuning)."""
    mixed = concatenate_datasets([build_prompts(dataset, "summary", template), build_prompts(dataset, "topic")])
    return mixed.shuffle(seed=seed)


def tokenize(dataset: Dataset, tokenizer: PreTrainedTokenizerBase, max_source_length: int = 512,
             max_target_length: int = 128) -> Dataset:
    """Token ids for `prompt` -> `target`, truncated but not padded: the collator pads each batch."""
    def encode(batch: dict) -> dict:
        features = tokenizer(batch["prompt"], max_length=max_source_length, truncation=True)
        features["labels"] = tokenizer(text_target=batch["target"], max_length=max_target_length,
                                       truncation=True)["input_ids"]
        return features

    return dataset.map(encode, batched=True, remove_columns=dataset.column_names, desc="Tokenising")


def make_collator(tokenizer: PreTrainedTokenizerBase, model=None,
                  pad_to_multiple_of: int | None = None) -> DataCollatorForSeq2Seq:
    """Pad each batch to its own longest example; padded label positions are -100 so the loss skips them."""
    return DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100,
                                  pad_to_multiple_of=pad_to_multiple_of)


def references_for(dataset: Dataset, task: str = "summary") -> list[list[str]]:
    """The human answers each example is scored against: every summary, or every topic."""
    if task not in TASKS:
        raise UserError(f"unknown task '{task}'. Choose one of: {', '.join(TASKS)}.")
    references = [list(r) for r in dataset[TASKS[task][1]]]
    missing = [i for i, r in zip(dataset["id"], references, strict=True) if not r]
    if missing:
        raise UserError(f"{len(missing)} dialogue(s) have no {task} to score against (e.g. {', '.join(missing[:3])}). "
                        f"Use data with a '{task}' column, or --task summary.")
    return references
