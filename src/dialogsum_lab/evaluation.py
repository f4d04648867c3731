"""Generate, score, and write `predictions.jsonl` + `metrics.json` into a run folder.

Scoring outside predictions goes through the same writer, so any system's
outputs are compared on equal terms with ours.
"""

import logging
import os
import time
from collections import Counter
from pathlib import Path

from datasets import Dataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from dialogsum_lab.config import EVAL_CONFIG, TRAIN_CONFIG, EvalConfig
from dialogsum_lab.data import (
    UNNAMED_SPLIT,
    fact_pools,
    facts_of,
    head,
    load_dialogsum,
    references_for,
    select_split,
    task_view,
)
from dialogsum_lab.data_files import json_lines, read_text
from dialogsum_lab.details import detail_rows, summarise
from dialogsum_lab.errors import UserError
from dialogsum_lab.files import read_json, weights_fingerprint
from dialogsum_lab.generation import generate_summaries, generation_config
from dialogsum_lab.metrics import compute_rouge, scored_against
from dialogsum_lab.model_card import write_model_card
from dialogsum_lab.modeling import load_trained
from dialogsum_lab.runs import RunLayout, check_run_dir, run_folder, run_path, write_json, write_jsonl, write_yaml
from dialogsum_lab.training_data import TRAINING_SET, overlap

log = logging.getLogger(__name__)


def load_eval_split(config: EvalConfig, run: str | Path | None = None) -> tuple[Dataset, dict]:
    """The (first `limit` dialogues of the) split to score, refusing an empty one, and what was checked about a
    training run's own dialogues (`run`): scoring a run on dialogues it trained on is refused unless
    `unseen_only` drops them; a file that names no split is one file the run may have held part of out, so
    only its unseen part is scored, said aloud."""
    split, single_file = split_to_use(config)
    references_for(split, config.task)  # scoring needs references: say so before a model is even loaded
    return _without_trained(split, config, run, single_file)


def split_to_use(config: EvalConfig) -> tuple[Dataset, bool]:
    """The first `limit` dialogues of the split, refused when empty, and whether the data was one unnamed file."""
    data = load_dialogsum(config.data, skip_invalid=config.skip_invalid)
    split = head(select_split(data, config.split), config.limit)
    if len(split) == 0:
        raise UserError(f"the {config.split} split of {config.data} is empty. Pick another --split or --data.")
    return split, list(data) == [UNNAMED_SPLIT]


def _without_trained(split: Dataset, config: EvalConfig, run: str | Path | None,
                     single_file: bool) -> tuple[Dataset, dict]:
    if run is None or not (Path(run) / TRAINING_SET).is_file() and not (Path(run) / TRAIN_CONFIG).is_file():
        return split, {"checked": False, "reason": "not a trained model"}
    if not (Path(run) / TRAINING_SET).is_file():
        log.warning("%s records no training set (made before dialogsum-lab recorded one): whether the %s split "
                    "overlaps its training data is not checked.", run, config.split)
        return split, {"checked": False, "reason": f"the run has no {TRAINING_SET}"}
    seen = overlap(read_json(Path(run) / TRAINING_SET), split, config.data, config.split)
    checked = {"checked": True, "trained_on": len(seen), "of": len(split)}
    if not seen:
        return split, checked
    if not (config.unseen_only or single_file):
        raise UserError(f"{len(seen)} of the {len(split)} dialogues of {config.data}[{config.split}] are ones {run} "
                        "trained on: their scores would measure memory, not summarising. Pass --unseen-only to score "
                        f"only the {len(split) - len(seen)} unseen ones, or evaluate another --split or --data.")
    keep = sorted(set(range(len(split))) - set(seen))
    if not keep:
        raise UserError(f"{run} trained on every dialogue of {config.data}[{config.split}]: nothing unseen is left "
                        "to score. Evaluate another --split or --data (or train with --eval-holdout N).")
    log.warning("Scoring the %d of %d dialogues of %s that %s did not train on (%d trained on are left out).",
                len(keep), len(split), config.data, run, len(seen))
    return split.select(keep), checked | {"excluded": len(seen)}


def run_evaluation(path: str | Path, config: EvalConfig, out: str | Path | None, *, prefix: str = "evaluate",
                   overwrite: bool = False, adapter: str | None = None, base: str | None = None,
                   system: str | None = None) -> tuple[Path, dict]:
    """Load `path` fresh (a model, an adapter or a training run), summarise the split, score, write.

    The data and the model are loaded before anything is written, so a mistake leaves nothing behind,
    and results already in `out` are replaced only once the new ones are complete. An evaluation written
    into the training run's own folder rewrites the run's model card.
    """
    out = run_path(out, prefix)
    check_run_dir(out, overwrite)
    data, checked = load_eval_split(config, path)
    model, tokenizer, info = load_trained(str(path), adapter, base, config.dtype, config.device)
    weights = Path(info["adapter"] or info["model"])
    metadata = {"system": system or Path(path).name, **info, "device": str(model.device),
                "dtype": str(model.dtype).removeprefix("torch."), "training_overlap": checked,
                "weights_sha256": weights_fingerprint(weights)}
    if weights.is_dir():  # found again from the evaluation folder, wherever a later command runs (scored_folder)
        metadata["weights_folder"] = os.path.relpath(weights.resolve(), out.resolve())
    with run_folder(out, overwrite) as folder:
        metrics = evaluate_model(model, tokenizer, data, folder, config, metadata)
    run = RunLayout.of(path)
    if run.finished() and out.resolve().parent == run.root.resolve():  # an evaluation kept in the run: its card
        write_model_card(run)
    return out, metrics


def run_summaries(path: str | Path, config: EvalConfig, out: str | Path | None, *, overwrite: bool = False,
                  adapter: str | None = None, base: str | None = None) -> tuple[Path, list[dict]]:
    """Summarise every dialogue of the split with `path` (a model, an adapter or a training run, with the run's own
    prompt and lengths), scoring nothing: dialogues need no summaries. Writes `predictions.jsonl` (id, summary,
    token counts) and `eval_config.yaml`; `dialogsum-lab score` can score the file later against references."""
    out = run_path(out, "summarize")
    check_run_dir(out, overwrite)
    data = split_to_use(config)[0]
    model, tokenizer, _ = load_trained(str(path), adapter, base, config.dtype, config.device)
    generation = generation_config(model, compile=config.compile, max_new_tokens=config.max_new_tokens)
    made = generate_summaries(model, tokenizer, task_view(data, config.task)[0], generation, config.batch_size,
                              config.template, config.max_source_length)
    rows = [{"id": i, "summary": text, "prompt_tokens": n, "summary_tokens": new, "finished": done}
            for i, text, n, new, done in zip(data["id"], made.texts, made.prompt_tokens, made.new_tokens,
                                             made.finished, strict=True)]
    with run_folder(out, overwrite) as folder:
        write_jsonl(folder / RunLayout.PREDICTIONS, rows)
        write_yaml(folder / EVAL_CONFIG, config.to_dict())
    return out, rows


def evaluate_model(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, dataset: Dataset, out_dir: Path,
                   config: EvalConfig, metadata: dict | None = None) -> dict:
    """Summarise every dialogue of `dataset`, score against its references, write both files."""
    generation = generation_config(model, compile=config.compile, max_new_tokens=config.max_new_tokens)
    start = time.perf_counter()
    summaries = generate_summaries(model, tokenizer, task_view(dataset, config.task)[0], generation,
                                   config.batch_size, config.template, config.max_source_length)
    seconds = time.perf_counter() - start
    n = len(summaries.texts)
    extra = {
        "prompt_template": config.template,
        "generation": {"strategy": "greedy", "max_new_tokens": config.max_new_tokens, "batch_size": config.batch_size,
                       "compile": config.compile, "max_source_length": config.max_source_length,
                       "seconds": round(seconds, 3),
                       "dialogues_per_second": round(n / seconds, 3) if seconds else None,
                       "truncated_prompts": summaries.truncated_prompts,
                       "max_prompt_tokens": max(summaries.prompt_tokens, default=0),
                       "mean_tokens": sum(summaries.new_tokens) / n if n else 0.0,
                       "hit_max_new_tokens": summaries.finished.count(False)},
        **(metadata or {}),
    }
    return write_results(out_dir, dataset, summaries.texts, config, extra)


def write_results(out_dir: Path, dataset: Dataset, predictions: list[str], config: EvalConfig,
                  metadata: dict | None = None, notes: list[dict] | None = None) -> dict:
    """Score `predictions` (in dataset order) with ROUGE and, for summaries, the detail view; write
    `predictions.jsonl` (with each summary's details and any `notes`), `metrics.json` and `eval_config.yaml`."""
    references = references_for(dataset, config.task)
    metrics = compute_rouge(predictions, references, config.bootstrap_samples, config.bootstrap_seed,
                            tokenizer=config.rouge_tokenizer)
    inputs = task_view(dataset, config.task)[0]
    details = (detail_rows(predictions, inputs, references, facts_of(dataset), fact_pools(config.data))
               if config.task == "summary" else None)
    if details is not None:
        metrics["details"] = summarise(details, config.bootstrap_samples, config.bootstrap_seed)
    metrics |= {"data": config.data, "split": config.split, "task": config.task, **(metadata or {}),
                "scored_against": scored_against(dataset["id"], references) | {"data": config.data,
                                                                              "split": config.split}}
    rows = [{"id": i, "dialogue": d, "references": r, "prediction": p}
            for i, d, r, p in zip(dataset["id"], inputs, references, predictions, strict=True)]
    for k, row in enumerate(rows):
        row |= ({"details": details[k]} if details else {}) | (notes[k] if notes else {})
    write_jsonl(out_dir / RunLayout.PREDICTIONS, rows)
    write_json(out_dir / RunLayout.METRICS, metrics)
    write_yaml(out_dir / EVAL_CONFIG, config.to_dict())
    return metrics


def read_predictions(path: str | Path, dataset: Dataset) -> list[str]:
    """Predictions aligned with `dataset`: JSONL with `id` and `prediction` (or `summary`, as `summarize` writes),
    or plain text, one a line.

    A count mismatch, a missing, unknown or repeated id is an error: silently
    scoring a subset, or one dialogue's summary against another's references,
    would make the numbers meaningless.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"predictions file {path} does not exist. Pass the file with --predictions.")
    text, ids = read_text(path), list(dataset["id"])  # read_text refuses a FIFO or a device unopened
    if path.suffix == ".jsonl":
        rows = [r | {"prediction": r.get("prediction", r.get("summary"))} for _, r in json_lines(path, text)]
        if any("id" not in r or r["prediction"] is None for r in rows):
            raise UserError(f"{path}: every line needs 'id' and 'prediction' (or 'summary'). Or give a .txt file, "
                            "one summary a line.")
        repeated = sorted(i for i, n in Counter(str(r["id"]) for r in rows).items() if n > 1)
        if repeated:
            raise UserError(f"{path}: id(s) {', '.join(repeated[:5])} appear on more than one line. Give one "
                            "prediction per dialogue.")
        by_id = {str(r["id"]): str(r["prediction"]) for r in rows}
        unknown = sorted(set(by_id) - set(ids))
        missing = [i for i in ids if i not in by_id]
        if unknown or missing:
            raise UserError(f"{path}: ids do not match the split ({len(unknown)} unknown, e.g. {unknown[:3]}; "
                            f"{len(missing)} missing, e.g. {missing[:3]}). Score against the split they came from "
                            "(--data/--split) or use --limit to match a shorter run.")
        return [by_id[i].strip() for i in ids]
    lines = text.rstrip("\n").split("\n")
    if len(lines) != len(ids):
        raise UserError(f"{path} has {len(lines)} lines but the split has {len(ids)} dialogues. One summary a line, "
                        "in the split's order (or use --limit to score the first N).")
    return [line.strip() for line in lines]
