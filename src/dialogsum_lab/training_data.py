"""What a run trains on: the dialogues chosen from the data, their prompts and tokens, and the record of them.

The record (`training_set.json` in the run folder) lists every dialogue the run trained on by id and by a
fingerprint of its text, so that evaluating the run on data it has seen is caught (`overlap`), whatever
file or split the same dialogues arrive in.
"""

import hashlib

from datasets import Dataset

from dialogsum_lab.config import TrainConfig
from dialogsum_lab.data import build_multitask, build_prompts, head, load_dialogsum, select_split, tokenize
from dialogsum_lab.errors import UserError
from dialogsum_lab.runs import RunLayout

TRAINING_SET = RunLayout.TRAINING_SET


def text_fingerprint(dialogue: str) -> str:
    """The dialogue's exact text (stripped) as a short hash: texts that differ only in whitespace stay distinct,
    as DialogSum's distinct dialogues test_173 and test_337 must."""
    return hashlib.sha256(dialogue.strip().encode()).hexdigest()[:16]


def select_dialogues(config: TrainConfig) -> tuple[Dataset, Dataset | None]:
    """The training dialogues and the ones for the evaluation loss (a held-out tail, or the eval split)."""
    data = load_dialogsum(config.data)
    train = select_split(data, config.train_split)
    evaluation = None
    if config.eval_holdout:
        if config.eval_holdout >= len(train):
            raise UserError(f"eval_holdout {config.eval_holdout} leaves nothing to train on ({len(train)} dialogues).")
        cut = len(train) - config.eval_holdout
        train, evaluation = train.select(range(cut)), train.select(range(cut, len(train)))
    elif config.eval_strategy != "no":
        evaluation = select_split(data, config.eval_split)
        if evaluation is train:
            raise UserError(f"{config.data} has a single split, so training and evaluation would share it. "
                            "Set eval_holdout (e.g. --eval-holdout 100) or eval_strategy no.")
    train = head(train, config.limit_train)
    evaluation = head(evaluation, config.limit_eval) if evaluation is not None else None
    for name, split in (("training", train), ("evaluation", evaluation)):
        if split is not None and len(split) == 0:
            raise UserError(f"the {name} split of {config.data} has no dialogues. Check --data and the split "
                            "settings (train_split, eval_split, limit_train, limit_eval), or set eval_strategy no.")
        unlabelled = 0 if split is None else sum(not refs for refs in split["references"])
        if unlabelled:
            raise UserError(f"{unlabelled} of {len(split)} dialogues of the {name} split of {config.data} have no "
                            "summary: training needs one per dialogue. Use data with a 'summary' column (dialogues "
                            "without one can be summarised: dialogsum-lab summarize).")
    return train, evaluation


def training_set_record(config: TrainConfig, train: Dataset, evaluation: Dataset | None) -> dict:
    """Which dialogues the run trained on (ids and text fingerprints), and which it held out."""
    return {"data": config.data, "split": config.train_split, "dialogues": len(train), "ids": list(train["id"]),
            "text_sha256": [text_fingerprint(d) for d in train["dialogue"]],
            "held_out_ids": list(evaluation["id"]) if config.eval_holdout and evaluation is not None else []}


def encode(config: TrainConfig, split: Dataset, tokenizer) -> Dataset:
    """Prompt -> target token ids for the run's task mixture (summaries, plus topics when multi-task)."""
    pairs = (build_multitask(split, config.seed, config.prompt_template) if config.multitask
             else build_prompts(split, "summary", config.prompt_template))
    return tokenize(pairs, tokenizer, config.max_source_length, config.max_target_length)


def overlap(record: dict, dataset: Dataset, source: str, split: str) -> list[int]:
    """Positions in `dataset` of dialogues the run trained on: the same text, or the same id in the same split of
    the same data (ids alone say nothing across files: two files may both number their rows from 1)."""
    same_split = (record["data"], record["split"]) == (source, split)
    texts, ids = set(record["text_sha256"]), set(record["ids"]) if same_split else set()
    return [i for i, (ident, dialogue) in enumerate(zip(dataset["id"], dataset["dialogue"], strict=True))
            if ident in ids or text_fingerprint(dialogue) in texts]
