"""Tables and pictures of results: what a learner reads after a run, and the side-by-side comparison."""

import os
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from dialogsum_lab.details import DETAIL_COLUMNS
from dialogsum_lab.errors import UserError
from dialogsum_lab.files import read_json, read_jsonl, weights_fingerprint
from dialogsum_lab.metrics import (
    BOOTSTRAP_SAMPLES,
    PRIMARY_VIEW,
    ROUGE_TYPES,
    VIEWS,
    format_p,
    paired_bootstrap,
    per_example_scores,
    scored_against,
)
from dialogsum_lab.runs import RunLayout, save_figure, write_json, write_text


def rouge_frame(metrics: dict) -> pd.DataFrame:
    """One row per multi-reference view, one column per ROUGE type: 'mean [ci_low, ci_high]'."""
    return pd.DataFrame(
        {t: [f"{metrics['rouge'][v][t]['mean']:.4f} [{metrics['rouge'][v][t]['ci_low']:.4f}, "
             f"{metrics['rouge'][v][t]['ci_high']:.4f}]" for v in VIEWS] for t in ROUGE_TYPES},
        index=pd.Index(list(VIEWS), name="view"))


def rouge_table(metrics: dict, title: str = "") -> str:
    """The table the command line prints after scoring: every view, mean and interval."""
    refs = metrics["references_per_example"]
    span = f"{refs['min']}" if refs["min"] == refs["max"] else f"{refs['min']}-{refs['max']}"
    head = (f"{title}ROUGE F1 over {metrics['n_examples']} examples ({span} references each); "
            f"{metrics['settings']['confidence']:.0%} bootstrap interval in brackets")
    return f"{head}\n{rouge_frame(metrics).to_string()}"


def details_line(metrics: dict) -> str:
    """The detail view of one evaluation in a line: what ROUGE does not show (details.py)."""
    block = metrics["details"]
    shown = [f"{label} {block[key]['mean']:.1%} [{block[key]['ci_low']:.1%}, {block[key]['ci_high']:.1%}]"
             for key, label in DETAIL_COLUMNS.items() if key in block and block[key]["n"]]
    return "Details (details.py): " + "; ".join(shown)


def plot_loss_curve(log_history: list[dict], title: str = ""):
    """Training loss per step (and eval loss where logged) from a Trainer's `log_history`."""
    fig, ax = _figure((6, 3.5))
    train = [(h["step"], h["loss"]) for h in log_history if "loss" in h]
    evals = [(h["step"], h["eval_loss"]) for h in log_history if "eval_loss" in h]
    if train:
        ax.plot(*zip(*train, strict=True), label="train loss", marker=".")
    if evals:
        ax.plot(*zip(*evals, strict=True), label="eval loss", marker="o")
    ax.set(xlabel="optimizer step", ylabel="cross-entropy", title=title or "Loss curve")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_lengths(lengths: dict[str, list[int]], limit: int = 512, title: str = ""):
    """Token-length histograms (e.g. prompts and summaries) with the truncation limit marked."""
    fig, ax = _figure((6, 3.5))
    for name, values in lengths.items():
        ax.hist(values, bins=30, alpha=0.6, label=f"{name} (max {max(values)})")
    ax.axvline(limit, color="black", linestyle="--", label=f"truncation at {limit}")
    ax.set(xlabel="tokens", ylabel="examples", title=title or "Token lengths")
    ax.legend()
    fig.tight_layout()
    return fig


def _figure(size: tuple[float, float]):
    """A new figure; outside notebooks on the non-interactive backend (no display needed)."""
    import matplotlib

    try:
        from IPython import get_ipython

        interactive = get_ipython() is not None
    except ImportError:
        interactive = False
    if not interactive:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size)


def load_system(path: str | Path) -> dict:
    """One compared system: its evaluation metrics, predictions and (if trained) training metrics.

    `path` is an evaluation folder (with metrics.json) or a training run whose
    evaluation lies in `eval-test/` (or the only `eval-*/` folder).
    """
    path = Path(path)
    train = RunLayout.of(path).file(RunLayout.TRAIN_METRICS)
    if not (path / RunLayout.METRICS).is_file():
        evaluations = RunLayout.of(path).evaluations()
        if not evaluations:
            raise UserError(f"{path} has no metrics.json: evaluate it first (dialogsum-lab evaluate {path}).")
        path = evaluations[0]
    elif not train.is_file():
        train = RunLayout.of(path.parent).file(RunLayout.TRAIN_METRICS)
    metrics, predictions = read_json(path / RunLayout.METRICS), read_jsonl(path / RunLayout.PREDICTIONS)
    _check_evaluation(path, metrics, predictions)
    training = read_json(train) if train.is_file() else {}
    return {"name": training.get("method") or metrics.get("system") or path.name, "path": str(path),
            "metrics": metrics, "train": training, "predictions": predictions}


EVALUATION_KEYS = ("n_examples", "references_per_example", "rouge", "settings")


def _check_evaluation(path: Path, metrics: dict, predictions: list[dict]) -> None:
    """An evaluation folder as `evaluate` writes it, or one line naming what is wrong with it."""
    lacking = [k for k in EVALUATION_KEYS if k not in metrics] + [
        f"rouge[{v}]" for v in VIEWS[:3] if v not in metrics.get("rouge", {})]
    if lacking:
        raise UserError(f"{path / 'metrics.json'} is incomplete or damaged (it lacks {', '.join(lacking)}). Evaluate "
                        "again (dialogsum-lab evaluate ... --overwrite).")
    for number, row in enumerate(predictions, start=1):
        refs = row.get("references")
        if not (isinstance(row.get("id"), str) and isinstance(row.get("prediction"), str) and isinstance(refs, list)
                and refs and all(isinstance(r, str) for r in refs)):
            raise UserError(f"{path / 'predictions.jsonl'}, line {number}: needs a text id, a text prediction and a "
                            "list of reference texts. Evaluate again (dialogsum-lab evaluate ... --overwrite).")
    if len(predictions) != metrics["n_examples"]:
        raise UserError(f"{path}: predictions.jsonl has {len(predictions)} rows but metrics.json scored "
                        f"{metrics['n_examples']}. Evaluate again (dialogsum-lab evaluate ... --overwrite).")


def comparison_frame(systems: list[dict], view: str = PRIMARY_VIEW) -> pd.DataFrame:
    """One row per system: ROUGE means with intervals and the cost of training it. `trainable_params` counts the
    parameters that reach the model (prompt tuning allocates twice as many: `allocated_params`)."""
    rows = []
    for s in systems:
        rouge = s["metrics"]["rouge"][view]
        train = s["train"]
        row = {"system": s["name"]}
        for t in ROUGE_TYPES:
            row[t] = rouge[t]["mean"]
            row[f"{t}_ci"] = f"[{rouge[t]['ci_low']:.4f}, {rouge[t]['ci_high']:.4f}]"
        lab = s["metrics"]["rouge"].get("course_lab", {}).get("rougeLsum", {})
        row["rougeLsum_course_lab"] = lab.get("mean", float("nan"))  # the lab's rougeLsum: no sentence split
        used = train.get("used_parameters", train.get("trainable_parameters", 0))
        row |= {"trainable_params": used, "allocated_params": train.get("trainable_parameters", 0),
                "trainable_%": 100 * used / train["total_parameters"] if train.get("total_parameters") else 0.0,
                "train_s": train.get("train_seconds", 0.0), "peak_memory_mb": train.get("peak_memory_mb"),
                "saved_weights_mb": train.get("saved_weights_mb")}
        rows.append(row)
    from dialogsum_lab.findings import details_frame, is_baseline

    details = details_frame(systems).drop(columns="system")
    return pd.DataFrame(rows).assign(kind=["baseline" if is_baseline(s) else "model" for s in systems]).join(details)


def improvements(systems: list[dict], baseline: int = 0, view: str = PRIMARY_VIEW) -> list[str]:
    """The lab's 'absolute percentage improvement' lines, said as what they are: differences in ROUGE F1 points
    (x 100) of each system over the baseline run, which is named."""
    base = systems[baseline]
    lines = []
    for s in systems:
        if s is base:
            continue
        lines.append(f"{s['name']} minus {base['name']} (the baseline), in ROUGE points (F1 x 100):")
        for t in ROUGE_TYPES:
            gain = s["metrics"]["rouge"][view][t]["mean"] - base["metrics"]["rouge"][view][t]["mean"]
            lines.append(f"  {t}: {gain * 100:+.2f} points")
    return lines


def check_comparable(systems: list[dict]) -> None:
    """Refuse, in one line naming the difference, systems that were not scored on the same thing: other
    dialogues, other references, another task or ROUGE tokenizer (read from each system's own predictions), or
    weights that have changed since they were scored."""
    for system in systems:
        check_fresh(system["metrics"], system["path"])
    first = systems[0]
    for other in systems[1:]:
        a, b = (_scored_on(s) for s in (first, other))
        names = f"{first['name']} ({first['path']}) and {other['name']} ({other['path']})"
        if a["task"] != b["task"]:
            raise UserError(f"{names} score different tasks ({a['task']} vs {b['task']}). Compare runs of one task.")
        if a["ids_sha256"] != b["ids_sha256"]:
            shared = len({p["id"] for p in first["predictions"]} & {p["id"] for p in other["predictions"]})
            raise UserError(f"{names} were scored on different dialogues ({a['n']} vs {b['n']}, {shared} in common). "
                            "Evaluate them on the same --data, --split and --limit.")
        if a["references_sha256"] != b["references_sha256"]:
            differ = [p["id"] for p, q in zip(first["predictions"], other["predictions"], strict=True)
                      if p["references"] != q["references"]]
            raise UserError(f"{names} were scored against different references: {len(differ)} of {a['n']} dialogues "
                            f"differ (e.g. {differ[0]}). Score both against the same data (--data, --split).")
    shared_tokenizer(systems)


def scored_folder(metrics: dict, evaluation: str | Path) -> Path | None:
    """The local model or adapter folder an evaluation scored, found from the evaluation folder, never from the
    folder a command runs in: recorded relative to it (`weights_folder`); for an evaluation made before that was
    recorded, the run's `model/` when the evaluation lies in a run, else the path as typed. None for a Hub model."""
    if metrics.get("weights_folder"):
        return Path(evaluation) / metrics["weights_folder"]
    typed = metrics.get("adapter") or metrics.get("model")
    if not (typed and metrics.get("weights_sha256")):
        return None
    run = RunLayout.of(Path(evaluation).parent)
    return run.model if run.file(RunLayout.CONFIG).is_file() and not Path(typed).is_absolute() else Path(typed)


def stale_weights(metrics: dict, evaluation: str | Path) -> str | None:
    """The model or adapter folder an evaluation scored, when it now holds other weights (trained further since)
    or is gone."""
    recorded, folder = metrics.get("weights_sha256"), scored_folder(metrics, evaluation)
    if recorded and folder is not None and weights_fingerprint(folder) != recorded:
        return str(folder)
    return None


def check_fresh(metrics: dict, where: str | Path) -> None:
    """Refuse an evaluation (in folder `where`) whose model or adapter folder now holds other weights, or is gone."""
    if folder := stale_weights(metrics, where):
        run = Path(folder).parent if Path(folder).name == "model" else Path(folder)
        what = (f"weights that {folder} no longer holds (trained further since)" if Path(folder).is_dir()
                else f"weights in {folder}, which is gone (moved or deleted)")
        raise UserError(f"{where} is stale: it scored {what}. Evaluate again: dialogsum-lab evaluate {run} "
                        "--overwrite.")


def _scored_on(system: dict) -> dict:
    rows = system["predictions"]
    return scored_against([r["id"] for r in rows], [r["references"] for r in rows]) | {
        "task": system["metrics"].get("task", "summary")}


def shared_tokenizer(systems: list[dict]) -> str:
    """The ROUGE tokenizer every system was scored with; systems scored differently are not comparable."""
    tokenizers = {s["metrics"].get("settings", {}).get("tokenizer", "default") for s in systems}
    if len(tokenizers) > 1:
        raise UserError(f"these runs were scored with different ROUGE tokenizers ({', '.join(sorted(tokenizers))}), "
                        "so their numbers are not comparable. Score them again with the same --rouge-tokenizer.")
    return tokenizers.pop()


def significance_frame(systems: list[dict], view: str = PRIMARY_VIEW, samples: int = BOOTSTRAP_SAMPLES,
                       seed: int = 0) -> pd.DataFrame:
    """Paired bootstrap for every pair of systems on the same examples: is b better than a?"""
    check_comparable(systems)
    tokenizer = shared_tokenizer(systems)
    scores = [per_example_scores([p["prediction"] for p in s["predictions"]],
                                 [p["references"] for p in s["predictions"]], tokenizer)[view] for s in systems]
    rows = []
    for (i, a), (j, b) in combinations(enumerate(systems), 2):
        for t in ROUGE_TYPES:
            test = paired_bootstrap(scores[i][t], scores[j][t], samples, seed)
            rows.append({"a": a["name"], "b": b["name"], "rouge": t, **test})
    return pd.DataFrame(rows)


def plot_rouge_bars(systems: list[dict], view: str = PRIMARY_VIEW, title: str = ""):
    """Grouped bars: one group per ROUGE type, one bar per system, with bootstrap intervals."""
    fig, ax = _figure((7, 3.8))
    width = 0.8 / len(systems)
    x = np.arange(len(ROUGE_TYPES))
    for k, s in enumerate(systems):
        cells = [s["metrics"]["rouge"][view][t] for t in ROUGE_TYPES]
        means = np.array([c["mean"] for c in cells])
        errors = np.array([means - [c["ci_low"] for c in cells], [c["ci_high"] for c in cells] - means])
        ax.bar(x + k * width - 0.4 + width / 2, means, width, yerr=errors, capsize=3, label=s["name"])
    ax.set_xticks(x, ROUGE_TYPES)
    ax.set(ylabel="F1", title=title or "ROUGE by system (95% bootstrap interval)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def side_by_side(systems: list[dict], index: int = 0) -> str:
    """The lab's qualitative view: one dialogue, the human summary, and every system's summary."""
    first = systems[0]["predictions"]
    if not 0 <= index < len(first):
        raise UserError(f"example {index} is out of range: the runs have {len(first)} examples.")
    example = first[index]
    parts = [f"### Example {index} ({example['id']})", "", "**Dialogue**", "", "```", example["dialogue"], "```", "",
             f"**Human summary**: {example['references'][0]}", ""]
    parts += [f"**{s['name']}**: {s['predictions'][index]['prediction']}" for s in systems]
    return "\n".join(parts) + "\n"


def markdown_table(frame: pd.DataFrame, floatfmt: str = ".4f") -> str:
    """A GitHub-flavoured Markdown table."""
    return frame.to_markdown(index=False, floatfmt=floatfmt)


def compare_runs(paths: list[str | Path], out: Path, example: int = 0, view: str = PRIMARY_VIEW,
                 bootstrap_samples: int = BOOTSTRAP_SAMPLES) -> str:
    """Write comparison.{md,csv}, significance.csv, rouge_bars.png and side_by_side.md; return the report. Baselines
    among the systems (`baselines.with_baselines`) are compared like runs, and each model against the best of them
    (baselines.md)."""
    if view not in VIEWS:
        raise UserError(f"unknown view '{view}'. Choose one of {', '.join(VIEWS)}.")
    systems = [load_system(p) for p in paths]
    check_comparable(systems)
    table = comparison_frame(systems, view)
    significance = significance_frame(systems, view, bootstrap_samples) if len(systems) > 1 else pd.DataFrame()
    report = [f"ROUGE F1 ({view}, {systems[0]['metrics']['n_examples']} examples, all scored against the same "
              "references), with 95% bootstrap intervals, and the details each system keeps or invents "
              "(shares; details.py)", "", markdown_table(table.drop(columns=[f"{t}_ci" for t in ROUGE_TYPES[2:]])),
              "", *improvements(systems, view=view)]
    if len(significance):  # models with one another here; each against the best baseline below (findings.py)
        models = {s["name"] for s in systems if "baseline" not in s["metrics"]}
        shown = significance[significance["rouge"].isin(["rouge1", "rougeL"]) & significance["a"].isin(models)
                             & significance["b"].isin(models)].assign(
            p=lambda f: [format_p(p, n) for p, n in zip(f["p_value"], f["samples"], strict=True)])
        report += ["", "Paired bootstrap (b - a in F1; significant when the interval excludes 0):", "",
                   markdown_table(shown[["a", "b", "rouge", "difference", "ci_low", "ci_high", "p", "significant"]])]
    from dialogsum_lab.findings import against_baselines

    verdicts = against_baselines(systems, bootstrap_samples)
    text = "\n".join([*report, "", *verdicts] if verdicts else report) + "\n"
    if verdicts:
        write_text(out / "baselines.md", "\n".join(verdicts) + "\n")
    write_text(out / "comparison.md", text)
    write_text(out / "comparison.csv", table.to_csv(index=False))
    write_text(out / "significance.csv", significance.to_csv(index=False))
    write_text(out / "side_by_side.md", side_by_side(systems, example))
    write_json(out / "comparison.json", {"view": view, "systems_relative_to_this_folder":
                                         [os.path.relpath(s["path"], out) for s in systems],
                                         "table": table.to_dict(orient="records")})
    save_figure(plot_rouge_bars(systems, view), out / "rouge_bars.png")
    return text
