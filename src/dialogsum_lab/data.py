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

import logging
import re
from functools import lru_cache
from pathlib import Path

from datasets import Dataset, DatasetDict, concatenate_datasets
from transformers import DataCollatorForSeq2Seq, PreTrainedTokenizerBase

from dialogsum_lab.config import CHANNELS_SOURCE, DEFAULT_SOURCE, MINIATURE_SOURCE, SAMPLE_DIR, SAMPLE_SOURCE
from dialogsum_lab.data_files import FILE_TYPES, normalise, read_rows
from dialogsum_lab.errors import UserError
from dialogsum_lab.prompts import TASK_PROMPTS, split_last_turn

log = logging.getLogger(__name__)

# task name -> (prompt template, column holding the target texts; None: the dialogue's own last turn)
TASKS = {"summary": (TASK_PROMPTS["summary"], "references"), "topic": (TASK_PROMPTS["topic"], "topics"),
         "next_turn": (TASK_PROMPTS["next_turn"], None)}
SPLIT_NAMES = {"train": "train", "dev": "validation", "val": "validation", "valid": "validation",
               "validation": "validation", "test": "test"}
UNNAMED_SPLIT = "data"  # key of a single file whose name names no split: it serves any split
COLUMNS = ("id", "dialogue", "summary", "references", "topic", "topics", "facts")


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
    if source == MINIATURE_SOURCE:
        return _load_world(skip_invalid)
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
    return (source not in (SAMPLE_SOURCE, MINIATURE_SOURCE, CHANNELS_SOURCE)
            and not Path(source).expanduser().exists()
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
        SPLIT_NAMES.get(name, name): _to_dataset(normalise(
            ((i + 2, row) for i, row in enumerate(split)), f"{source}[{name}]", skip_invalid))
        for name, split in hub.items()})


def _load_local(path: Path, skip_invalid: bool) -> DatasetDict:
    files = _split_files(path) if path.is_dir() else {_split_of(path) or UNNAMED_SPLIT: path}
    return DatasetDict({split: _to_dataset(normalise(read_rows(file), str(file), skip_invalid))
                        for split, file in files.items()})


@lru_cache(maxsize=2)
def _load_world(skip_invalid: bool) -> DatasetDict:
    """The synthetic dialogue world (world.py), generated in DialogSum's original shape and read like a file; once
    a process (it is the same on every call)."""
    from dialogsum_lab.world import SPLIT_SIZES, generate

    return DatasetDict({split: _to_dataset(normalise(((i + 1, d.row()) for i, d in enumerate(generate(split))),
                                                      f"{MINIATURE_SOURCE}[{split}]", skip_invalid))
                        for split in SPLIT_SIZES})


def _load_channels(skip_invalid: bool) -> DatasetDict:
    """A SageMaker job's channels: each channel folder's data file is that split (the train channel may carry the
    other splits too, as files named by split)."""
    from dialogsum_lab.job_env import CHANNELS, channel_folders

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
    return DatasetDict({split: _to_dataset(normalise(read_rows(file), str(file), skip_invalid))
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


def _to_dataset(rows: list[dict]) -> Dataset:
    if not rows:
        return Dataset.from_dict({c: [] for c in COLUMNS})
    return Dataset.from_list([{c: row[c] for c in COLUMNS} for row in rows])


def facts_of(dataset: Dataset) -> list[list[dict]] | None:
    """The facts each row's generator recorded (the miniature's do), or None when the data records none."""
    facts = dataset["facts"] if "facts" in dataset.column_names else []
    return [list(f or []) for f in facts] if any(facts) else None


def fact_pools(source: str) -> dict[str, tuple[str, ...]]:
    """Every value a fact of `source` could have taken, by pool: the detail view's "a value from elsewhere"."""
    if source != MINIATURE_SOURCE:
        return {}
    from dialogsum_lab.world import all_pools

    return all_pools()


def head(dataset: Dataset, n: int | None) -> Dataset:
    """The first `n` rows (all of them when `n` is None or larger than the split)."""
    return dataset if n is None else dataset.select(range(min(n, len(dataset))))


def task_view(dataset: Dataset, task: str = "summary") -> tuple[list[str], list[list[str]]]:
    """What a task reads and what it is scored against, per dialogue: the dialogue and its summaries or topics;
    for `next_turn`, every turn but the last, and that last turn."""
    if task not in TASKS:
        raise UserError(f"unknown task '{task}'. Choose one of: {', '.join(TASKS)}.")
    column = TASKS[task][1]
    if column is None:
        pairs = [split_last_turn(d) for d in dataset["dialogue"]]
        return [context for context, _ in pairs], [[last] for _, last in pairs]
    return list(dataset["dialogue"]), [list(r) for r in dataset[column]]


def build_prompts(dataset: Dataset, task: str = "summary", template: str | None = None) -> Dataset:
    """Training pairs (`prompt`, `target`, `task`) for a task (`summary`, `topic`, `next_turn`).

    A dialogue with several human summaries gives one pair per summary, so
    folding repeated dialogues never throws training targets away.
    """
    inputs, targets = task_view(dataset, task)
    template = template or TASKS[task][0]
    if "{dialogue}" not in template:
        raise UserError(f"prompt template {template!r} has no {{dialogue}} placeholder. Add one.")
    pairs = [(template.format(dialogue=text), target) for text, answers in zip(inputs, targets, strict=True)
             for target in answers]
    return Dataset.from_dict({"prompt": [p for p, _ in pairs], "target": [t for _, t in pairs],
                              "task": [task] * len(pairs)})


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
    """The human answers each example is scored against: every summary, every topic, or the last turn."""
    references = task_view(dataset, task)[1]
    missing = [i for i, r in zip(dataset["id"], references, strict=True) if not r]
    if missing:
        raise UserError(f"{len(missing)} of {len(references)} dialogue(s) have no {task} to score against (e.g. "
                        f"{', '.join(missing[:3])}). Use data with a '{task}' (or '{task}1', ...) column, or get "
                        "predictions without scores: dialogsum-lab summarize.")
    return references
