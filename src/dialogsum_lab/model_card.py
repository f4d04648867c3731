"""The model card of a finished run: the Hub's `README.md` (YAML metadata, then prose), written from the run's
own files only, so every number in it is one the run measured and recorded.

Written when a run finishes training and again whenever it is evaluated into its folder; `push` renders it
with the repository's name in the loading code. `huggingface_hub`'s `ModelCardData` and `EvalResult` write the
metadata, so the `model-index` is the one the Hub reads into its evaluation results.
"""

from importlib import metadata
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from dialogsum_lab.config import (
    DEFAULT_SOURCE,
    MINIATURE_MODEL,
    MINIATURE_SOURCE,
    SAMPLE_SOURCE,
    TINY_MODEL,
    VIEWS,
    TrainConfig,
)
from dialogsum_lab.data import is_hub_id
from dialogsum_lab.details import DETAIL_COLUMNS
from dialogsum_lab.files import read_json
from dialogsum_lab.methods import METHOD_SETTINGS, PEFT_CONFIGS
from dialogsum_lab.metrics import COURSE_VIEW, ROUGE_TYPES
from dialogsum_lab.modeling import model_note
from dialogsum_lab.reporting import stale_weights
from dialogsum_lab.runs import RunLayout, write_text

PROJECT = "dialogsum-lab"
# Licences of base models by name prefix; the project's own models (the miniature, the toy) carry its licence.
BASE_LICENSES = {"google/flan-t5-": "apache-2.0", "google/t5-": "apache-2.0"}
DATA_NAMES = {DEFAULT_SOURCE: "DialogSum", MINIATURE_SOURCE: "miniature (synthetic, dialogsum-lab)",
              SAMPLE_SOURCE: "dialogsum-lab sample (64 hand-written dialogues)"}
SYNTHETIC_DATA = {MINIATURE_SOURCE: "the miniature, a synthetic dialogue world made by dialogsum-lab (not DialogSum)"}
ROUGE_NAMES = {"rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L", "rougeLsum": "ROUGE-Lsum"}


def write_model_card(layout: RunLayout) -> Path:
    """(Re)write `README.md` in a finished run's folder, from what the run holds now."""
    return write_text(layout.file(RunLayout.CARD), render_card(layout))


def render_card(layout: RunLayout, repo_id: str | None = None, merge_check: dict | None = None) -> str:
    """The card's text: `repo_id` names the model in the loading code (else `model`, the run's own folder for
    it); `merge_check` (what `merge_adapter` measured) describes the adapter merged into its base, a standalone
    transformers model."""
    merged = merge_check is not None
    config = TrainConfig.load(layout.file(RunLayout.CONFIG))
    trained = read_json(layout.file(RunLayout.TRAIN_METRICS))
    fresh, stale = _evaluations(layout)
    adapter = config.method in PEFT_CONFIGS and not merged
    data = ModelCardData(
        base_model=config.model if is_hub_id(config.model) else None,
        datasets=[config.data] if is_hub_id(config.data) else None,
        library_name="peft" if adapter else "transformers", pipeline_tag="summarization", language="en",
        license=_license(config.model), tags=_tags(config, merged), metrics=["rouge"],
        model_name=repo_id or f"{config.method} {config.model}",
        eval_results=[result for e in fresh for result in _eval_results(e)] or None)
    sections = [_title(config, repo_id, merged), _training(config, trained, merged),
                _evaluation(fresh, stale, merge_check), _usage(config, repo_id or layout.model.name, adapter),
                _limits(config)]
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n"))


def _evaluations(layout: RunLayout) -> tuple[list[dict], list[str]]:
    """The run's evaluations that scored the weights it holds now, and the folders of those that did not."""
    fresh, stale = [], []
    for folder in layout.evaluations():
        metrics = read_json(folder / RunLayout.METRICS)
        if stale_weights(metrics, folder):
            stale.append(folder.name)
        else:
            fresh.append({"folder": folder.name, "metrics": metrics})
    return fresh, stale


def _license(model: str) -> str:
    if model in (MINIATURE_MODEL, TINY_MODEL):
        return _project_license()
    return next((lic for prefix, lic in BASE_LICENSES.items() if model.startswith(prefix)), "other")


def _project_license() -> str:
    try:
        return (metadata.metadata(PROJECT)["License"] or "other").lower()
    except metadata.PackageNotFoundError:
        return "other"


def _tags(config: TrainConfig, merged: bool) -> list[str]:
    tags = [PROJECT, "summarization", "dialogue-summarization", "t5", config.method.replace("_", "-")]
    if config.method in PEFT_CONFIGS:
        tags += ["peft"] + (["merged"] if merged else [])
    if config.data in SYNTHETIC_DATA or model_note(config.model):
        tags.append("synthetic")
    return tags


def _eval_results(evaluation: dict) -> list[EvalResult]:
    """One result per view and ROUGE type, with what was scored and how (the model-index's args)."""
    m = evaluation["metrics"]
    settings = m["settings"]
    dataset_args = {"dialogues": m["n_examples"], "references_per_dialogue": m["references_per_example"],
                    "task": m.get("task", "summary")}
    scorer = (f"rouge_score F1, {'Porter stemmer, ' if settings['use_stemmer'] else ''}{settings['tokenizer']} "
              f"tokenizer; {settings['confidence']:.0%} bootstrap interval, {settings['bootstrap_samples']} resamples")
    return [EvalResult(task_type="summarization", task_name="Dialogue summarization",
                       dataset_type=m["data"] if is_hub_id(m["data"]) else f"local:{Path(m['data']).name}",
                       dataset_name=DATA_NAMES.get(m["data"], Path(m["data"]).name), dataset_split=m["split"],
                       dataset_args=dataset_args, metric_type="rouge", metric_config=f"{view}.{t}",
                       metric_name=f"{ROUGE_NAMES[t]} ({view})", metric_value=round(cell["mean"], 4),
                       metric_args={"scorer": scorer, "interval": [round(cell["ci_low"], 4),
                                                                   round(cell["ci_high"], 4)]})
            for view in VIEWS if view in m["rouge"] for t, cell in m["rouge"][view].items()] + [
        EvalResult(task_type="summarization", task_name="Dialogue summarization",
                   dataset_type=m["data"] if is_hub_id(m["data"]) else f"local:{Path(m['data']).name}",
                   dataset_name=DATA_NAMES.get(m["data"], Path(m["data"]).name), dataset_split=m["split"],
                   dataset_args=dataset_args, metric_type="detail_consistency", metric_config=key,
                   metric_name=f"{label} (share)", metric_value=round(cell["mean"], 4),
                   metric_args={"definition": "dialogsum_lab.details", "dialogues": cell["n"],
                                "interval": [round(cell["ci_low"], 4), round(cell["ci_high"], 4)]})
        for key, label in DETAIL_COLUMNS.items() if (cell := m.get("details", {}).get(key)) and cell["n"]]


def _title(config: TrainConfig, repo_id: str | None, merged: bool) -> str:
    what = {"full": "fully fine-tuned", "lora": "LoRA adapter", "prompt_tuning": "soft prompt (prompt tuning)",
            "prefix_tuning": "prefix-tuning adapter", "ia3": "IA3 adapter"}[config.method]
    if merged:
        what = "LoRA adapter merged into its base"
    lines = [f"# {repo_id or f'{PROJECT}: {config.method} on {config.model}'}", "",
             f"A {what} of `{config.model}` for dialogue summarisation, trained on {_data_name(config.data)} with "
             f"{PROJECT} (FLAN-T5 on DialogSum, three ways). Everything below is read from the run's own files."]
    note = model_note(config.model) or (f"Trained on {SYNTHETIC_DATA[config.data]}: its scores show the lab's "
                                        "effects in miniature and say nothing about real models on DialogSum."
                                        if config.data in SYNTHETIC_DATA else None)
    if note:
        lines += ["", f"> **Synthetic, not a real summariser.** {note}"]
    return "\n".join(lines)


def _data_name(source: str) -> str:
    return DATA_NAMES.get(source, f"`{source}`")


def _training(config: TrainConfig, trained: dict, merged: bool) -> str:
    rows = [("method", config.method + (" (merged into the base for publishing)" if merged else "")),
            ("base model", f"`{config.model}`"), ("data", f"{_data_name(config.data)}, split `{config.train_split}`, "
                                                          f"{trained['train_examples']} examples"),
            ("optimiser steps", f"{trained['global_step']} ({trained['epochs']:.2f} epochs)"),
            ("batch", f"{config.batch_size} per device x {config.gradient_accumulation_steps} accumulation x "
                      f"{trained.get('processes', 1)} processes"),
            ("learning rate", f"{config.learning_rate:g} ({config.lr_scheduler}, warm-up {config.warmup_ratio:g}, "
                              f"weight decay {config.weight_decay:g})"),
            ("precision", trained.get("precision", config.precision)), ("seed", config.seed)]
    rows += [(name.replace("_", " "), _shown(getattr(config, name))) for name in METHOD_SETTINGS[config.method]]
    rows += [("trainable parameters", f"{trained.get('used_parameters', trained['trainable_parameters']):,} of "
                                      f"{trained['total_parameters']:,} "
                                      f"({trained.get('used_percent', trained['trainable_percent']):.2f}%)"),
             ("training time", f"{trained['train_seconds']:.0f} s on "
                               f"{trained.get('hardware', 'hardware not recorded')}"),
             ("loss", f"{trained['first_train_loss']:.3f} -> {trained['final_train_loss']:.3f} (training)"
              if trained.get("final_train_loss") is not None else "not logged")]
    table = "\n".join(f"| {name} | {value} |" for name, value in rows)
    return (f"## Training\n\n| setting | value |\n|---|---|\n{table}\n\nPrompt (the model expects it):\n\n```text\n"
            f"{config.prompt_template}\n```\n\nSource length {config.max_source_length} tokens, summaries "
            f"{config.max_target_length}. All settings: `config.yaml`; measurements: `train_metrics.json`.")


def _shown(value) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _evaluation(fresh: list[dict], stale: list[str], merge_check: dict | None) -> str:
    parts = ["## Evaluation"]
    if merge_check:
        parts.append(f"The scores are the adapter's. Merged into its base, it gave the same greedy summaries on all "
                     f"{merge_check['dialogues_checked']} dialogues checked ({merge_check['dialogues_from']}; largest "
                     f"logit difference {merge_check['max_abs_logit_difference']:.1e}, `merge_check.json`).")
    if not fresh:
        parts.append("Not evaluated yet: `dialogsum-lab evaluate RUN` scores it and rewrites this card.")
    for evaluation in fresh:
        parts.append(_evaluation_section(evaluation))
    if stale:
        parts.append(f"Left out: {', '.join(stale)} scored weights this run no longer holds (it trained further "
                     "since). `dialogsum-lab evaluate RUN --overwrite` scores it again.")
    return "\n\n".join(parts)


def _evaluation_section(evaluation: dict) -> str:
    m = evaluation["metrics"]
    refs, s, g = m["references_per_example"], m["settings"], m.get("generation", {})
    header = "| view | " + " | ".join(ROUGE_NAMES[t] for t in ROUGE_TYPES) + " |"
    rows = [f"| {view}{' (course-comparable)' if view == COURSE_VIEW else ''} | " + " | ".join(
        f"{m['rouge'][view][t]['mean']:.4f} [{m['rouge'][view][t]['ci_low']:.4f}, {m['rouge'][view][t]['ci_high']:.4f}]"
        for t in ROUGE_TYPES) + " |" for view in VIEWS if view in m["rouge"]]
    overlap = m.get("training_overlap", {})
    checked = ("none of them in its training set (checked against `training_set.json`)" if overlap.get("checked")
               and not overlap.get("excluded") else f"{overlap.get('excluded')} it trained on left out"
               if overlap.get("checked") else f"overlap with its training data not checked ({overlap.get('reason')})")
    return "\n".join([
        f"### {_data_name(m['data'])}, split `{m['split']}` (`{evaluation['folder']}/`)", "",
        f"{m['n_examples']} dialogues, {refs['min']}-{refs['max']} human references each; {checked}. ROUGE F1 with "
        f"{s['confidence']:.0%} bootstrap intervals ({s['bootstrap_samples']} resamples), rouge_score with the Porter "
        f"stemmer, `{s['tokenizer']}` tokenizer. Summaries: greedy, at most {g.get('max_new_tokens', '?')} new "
        f"tokens, prompts cut at {g.get('max_source_length', '?')} tokens.", "", header,
        "|---|" + "---|" * len(ROUGE_TYPES), *rows, "",
        f"`{COURSE_VIEW}` is the one to set beside the course lab's published figures (the mean over references, and "
        "rougeLsum without sentence splitting, as the lab computed it); `mean_over_references` is the project's "
        "main view.", *_details_section(m)])


def _details_section(m: dict) -> list[str]:
    """What ROUGE does not show: the details the summaries keep or invent (`dialogsum_lab.details`)."""
    if "details" not in m:
        return []
    from dialogsum_lab.reporting import details_line

    return ["", f"{details_line(m)}. ROUGE rewards a summary's shape; these shares say whether the summaries carry "
            "this dialogue's details (names, numbers, things) or another's. Compare them with the baselines' "
            "(`dialogsum-lab compare RUN ... --baselines`)."]


def _usage(config: TrainConfig, where: str, adapter: bool) -> str:
    """Loading code a reader copies: every path and name in it is a Python literal built with `repr`, so a quote
    (or anything else) in a path cannot break the snippet or add code to it."""
    base = repr(config.model)
    lines = ["## How to use", "", "```python"]
    if config.model in (MINIATURE_MODEL, TINY_MODEL):  # the project's own bases: not on the Hub
        lines += ["from dialogsum_lab.modeling import resolve_model_path  # pip install dialogsum-lab: its base"]
        base = f"resolve_model_path({config.model!r})"
    lines += ["from transformers import AutoModelForSeq2SeqLM, AutoTokenizer"]
    if adapter:
        lines += ["from peft import PeftModel", "", "model = PeftModel.from_pretrained(",
                  f"    AutoModelForSeq2SeqLM.from_pretrained({base}), {where!r}).eval()"]
    else:
        lines += ["", f"model = AutoModelForSeq2SeqLM.from_pretrained({where!r}).eval()"]
    lines += [f"tokenizer = AutoTokenizer.from_pretrained({where!r})", f"prompt = {config.prompt_template!r}",
              'dialogue = "#Person1#: Hi, I\'d like a table for two tonight.\\n#Person2#: Of course, at what time?"',
              "inputs = tokenizer(prompt.format(dialogue=dialogue), return_tensors=\"pt\", truncation=True, "
              f"max_length={config.max_source_length})",
              "summary = tokenizer.decode(model.generate(**inputs, max_new_tokens=200)[0], skip_special_tokens=True)",
              "```"]
    if config.method == "prefix_tuning":
        lines += ["", "Prefix tuning: peft's `generate()` drops the prefix on seq2seq models; load it with "
                      "`dialogsum_lab.modeling.load_trained`, which hands it over."]
    return "\n".join(lines)


def _limits(config: TrainConfig) -> str:
    limits = ["ROUGE counts shared words with human summaries: it rewards the shape of a summary and misses wrong "
              "details (a name, a time, a price), so read summaries before trusting a score.",
              "Trained and evaluated on English everyday dialogues with `#Person1#`-style speaker tags; other "
              "domains, languages and long dialogues (prompts are cut at "
              f"{config.max_source_length} tokens) are untested."]
    if config.data in SYNTHETIC_DATA or model_note(config.model):
        limits.insert(0, "Synthetic: made to show the lab's mechanics offline in minutes. Do not use it to "
                         "summarise real dialogues; its figures do not transfer to real models or data.")
    if config.data == DEFAULT_SOURCE:
        limits.append(f"See the licence and card of [{DEFAULT_SOURCE}](https://huggingface.co/datasets/"
                      f"{DEFAULT_SOURCE}) before using this model beyond research.")
    return "## Limits\n\n" + "\n".join(f"- {line}" for line in limits)


def card_metadata(path: str | Path) -> dict:
    """The YAML metadata of a card file, as the Hub's own parser reads it."""
    return ModelCard.load(path).data.to_dict()
