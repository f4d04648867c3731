"""Generate, score, and write `predictions.jsonl` + `metrics.json` into a run folder.

Scoring outside predictions goes through the same writer, so any system's
outputs are compared on equal terms with ours.
"""

import time
from pathlib import Path

from datasets import Dataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from dialogsum_lab.data import TASKS, head, load_dialogsum, references_for, select_split
from dialogsum_lab.errors import UserError
from dialogsum_lab.generation import DEFAULT_MAX_NEW_TOKENS, generation_config, summarize
from dialogsum_lab.metrics import compute_rouge
from dialogsum_lab.modeling import load_trained
from dialogsum_lab.runs import prepare_run_dir, read_jsonl, write_json, write_jsonl


def load_eval_split(source: str, split: str, limit: int | None = None, skip_invalid: bool = False) -> Dataset:
    """The (first `limit` dialogues of the) split to score, refusing an empty one."""
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1 (got {limit}).")
    data = head(select_split(load_dialogsum(source, skip_invalid=skip_invalid), split), limit)
    if len(data) == 0:
        raise UserError(f"the {split} split of {source} is empty. Pick another --split or --data.")
    return data


def run_evaluation(path: str | Path, source: str, split: str, out: str | Path | None, *, prefix: str = "evaluate",
                   overwrite: bool = False, limit: int | None = None, skip_invalid: bool = False,
                   adapter: str | None = None, base: str | None = None, dtype: str = "auto", device: str = "auto",
                   system: str | None = None, **generation) -> tuple[Path, dict]:
    """Load `path` fresh (a model, an adapter or a training run), summarise the split, score, write.

    The data is read before the run folder is made, so a bad source leaves nothing behind.
    `generation` takes `evaluate_model`'s settings (task, batch_size, max_new_tokens, ...).
    """
    data = load_eval_split(source, split, limit, skip_invalid)
    out = prepare_run_dir(out, prefix, overwrite)
    model, tokenizer, info = load_trained(str(path), adapter, base, dtype, device)
    metadata = {"system": system or Path(path).name, "data": source, "split": split, **info,
                "device": str(model.device), "dtype": str(model.dtype).removeprefix("torch.")}
    return out, evaluate_model(model, tokenizer, data, out, metadata=metadata, **generation)


def evaluate_model(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, dataset: Dataset, out_dir: Path, *,
                   task: str = "summary", batch_size: int = 16, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                   max_source_length: int = 512, prompt_template: str | None = None,
                   bootstrap_samples: int = 1000, seed: int = 0, metadata: dict | None = None) -> dict:
    """Summarise every dialogue of `dataset`, score against its references, write both files."""
    template = prompt_template or TASKS[task][0]
    config = generation_config(model, max_new_tokens=max_new_tokens)
    start = time.perf_counter()
    predictions = summarize(model, tokenizer, dataset["dialogue"], config, batch_size=batch_size,
                            prompt_template=template, max_source_length=max_source_length)
    seconds = time.perf_counter() - start
    lengths = [len(ids) for ids in tokenizer(predictions, add_special_tokens=False)["input_ids"]]
    extra = {
        "task": task, "prompt_template": template,
        "generation": {"strategy": "greedy", "max_new_tokens": max_new_tokens, "batch_size": batch_size,
                       "max_source_length": max_source_length, "seconds": round(seconds, 3),
                       "dialogues_per_second": round(len(predictions) / seconds, 3) if seconds else None,
                       "mean_tokens": sum(lengths) / len(lengths) if lengths else 0.0,
                       "hit_max_new_tokens": sum(n >= max_new_tokens for n in lengths)},
        **(metadata or {}),
    }
    return write_results(out_dir, dataset, predictions, task, bootstrap_samples, seed, extra)


def write_results(out_dir: Path, dataset: Dataset, predictions: list[str], task: str = "summary",
                  bootstrap_samples: int = 1000, seed: int = 0, metadata: dict | None = None) -> dict:
    """Score `predictions` (in dataset order) and write `predictions.jsonl` and `metrics.json`."""
    references = references_for(dataset, task)
    metrics = compute_rouge(predictions, references, bootstrap_samples=bootstrap_samples, seed=seed)
    metrics.update(metadata or {})
    rows = [{"id": i, "dialogue": d, "references": r, "prediction": p}
            for i, d, r, p in zip(dataset["id"], dataset["dialogue"], references, predictions, strict=True)]
    write_jsonl(out_dir / "predictions.jsonl", rows)
    write_json(out_dir / "metrics.json", metrics)
    return metrics


def read_predictions(path: str | Path, dataset: Dataset) -> list[str]:
    """Predictions aligned with `dataset`: JSONL with `id` and `prediction`, or plain text, one a line.

    A count mismatch, a missing or an unknown id is an error: silently
    scoring a subset would make the numbers incomparable.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"predictions file {path} does not exist. Pass the file with --predictions.")
    ids = list(dataset["id"])
    if path.suffix == ".jsonl":
        rows = read_jsonl(path)
        if any("id" not in r or "prediction" not in r for r in rows):
            raise UserError(f"{path}: every line needs 'id' and 'prediction'. Or give a .txt file, one summary a line.")
        by_id = {str(r["id"]): str(r["prediction"]) for r in rows}
        unknown = sorted(set(by_id) - set(ids))
        missing = [i for i in ids if i not in by_id]
        if unknown or missing:
            raise UserError(f"{path}: ids do not match the split ({len(unknown)} unknown, e.g. {unknown[:3]}; "
                            f"{len(missing)} missing, e.g. {missing[:3]}). Score against the split they came from "
                            "(--data/--split) or use --limit to match a shorter run.")
        return [by_id[i].strip() for i in ids]
    lines = path.read_text(encoding="utf-8").rstrip("\n").split("\n")
    if len(lines) != len(ids):
        raise UserError(f"{path} has {len(lines)} lines but the split has {len(ids)} dialogues. One summary a line, "
                        "in the split's order (or use --limit to score the first N).")
    return [line.strip() for line in lines]
