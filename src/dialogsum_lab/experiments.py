"""The lab's whole story as functions: the demo (zero-shot vs three fine-tuning methods) and the
catastrophic-forgetting check (single- vs multi-task fine-tuning). The CLI and notebooks call these."""

import math
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from dialogsum_lab.baselines import with_baselines
from dialogsum_lab.config import DEFAULT_PRESET, DEMO_METHODS, EVAL_CONFIG, TRAIN_CONFIG, EvalConfig, TrainConfig
from dialogsum_lab.errors import UserError
from dialogsum_lab.evaluation import run_evaluation
from dialogsum_lab.files import read_json
from dialogsum_lab.preset import Preset
from dialogsum_lab.reporting import compare_runs, markdown_table
from dialogsum_lab.runs import RunLayout, run_folder, run_path, write_json, write_text
from dialogsum_lab.training import train


class StageTimer:
    """Wall time per named stage, printed as it goes and saved as `timings.json`."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str):
        print(f"\n=== {name}")
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 2)
        print(f"=== {name}: {self.seconds[name]:.1f}s")

    def table(self) -> str:
        rows = [*self.seconds.items(), ("total", round(sum(self.seconds.values()), 2))]
        return markdown_table(pd.DataFrame(rows, columns=["stage", "seconds"]), floatfmt=".1f")


def evaluate_path(path: str | Path, preset: Preset | str | dict, out: Path, task: str = "summary",
                  system: str | None = None, overwrite: bool = False) -> dict:
    """Evaluate a model or training run with the preset's `evaluate` settings (and the run's own), loaded fresh."""
    config = Preset.load(preset).eval_config(run=path, overrides={"task": task})
    return run_evaluation(path, config, out, system=system, overwrite=overwrite)[1]


def plan_run(preset: Preset | str | dict, method: str, run_dir: str | Path, overrides: dict | None = None,
             overwrite: bool = False) -> tuple[TrainConfig, bool]:
    """The settings `method` trains with, and whether `run_dir` already holds a finished run made with them.

    Lets each notebook run on its own or after the others without training twice. A run made with
    other settings (another preset, an edited one) is never reused: it is an error naming what differs,
    unless `overwrite` (then it is trained again and replaces the old one once it succeeds).
    """
    layout = RunLayout.of(run_dir)
    config = Preset.load(preset).train_config(method, overrides)
    reuse = _reusable(layout.file(RunLayout.TRAIN_METRICS), _saved(layout.file(TRAIN_CONFIG), TrainConfig),
                      config.to_dict(), overwrite)
    if reuse:
        print(f"Reusing the finished {method} run in {run_dir} (same settings).")
    return config, reuse


def ensure_evaluation(preset: Preset | str | dict, run_dir: str | Path, method: str, overwrite: bool = False) -> Path:
    """Score the run in `run_dir` with the preset's `evaluate` settings (and the run's own), unless it already
    was with exactly these settings; returns the evaluation folder."""
    from dialogsum_lab.reporting import stale_weights

    run_dir = Path(run_dir)
    evaluation = Preset.load(preset).eval_config(run=run_dir)
    out = RunLayout.of(run_dir).evaluation(evaluation.split)
    metrics = out / RunLayout.METRICS
    stale = metrics.is_file() and stale_weights(read_json(metrics), out) is not None  # trained further: score again
    if stale or not _reusable(metrics, _saved(out / EVAL_CONFIG, EvalConfig), evaluation.to_dict(),
                              overwrite):
        run_evaluation(run_dir, evaluation, out, system=method, overwrite=overwrite or stale)
    return out


def ensure_run(preset: Preset | str | dict, method: str, run_dir: str | Path, overrides: dict | None = None,
               overwrite: bool = False) -> Path:
    """Train and evaluate `method` into `run_dir`, or reuse what is there if it was made with the same settings
    (see `plan_run`)."""
    preset = Preset.load(preset)
    config, reuse = plan_run(preset, method, run_dir, overrides, overwrite)
    if not reuse:
        train(config, run_dir, overwrite=overwrite)
    ensure_evaluation(preset, run_dir, method, overwrite=overwrite and not reuse)
    return Path(run_dir)


def ensure_baseline(preset: Preset | str | dict, out: str | Path, overwrite: bool = False) -> Path:
    """The zero-shot scores of the base model (always a fresh load), reused if made with the same settings."""
    out, preset = Path(out), Preset.load(preset)
    model, config = preset.model, preset.eval_config()
    previous = _saved(out / EVAL_CONFIG, EvalConfig)
    metrics = out / RunLayout.METRICS
    if metrics.is_file():
        previous["model"] = read_json(metrics).get("model")
    if not _reusable(metrics, previous, config.to_dict() | {"model": model}, overwrite):
        run_evaluation(model, config, out, system="zero-shot", overwrite=overwrite)
    return out


def _saved(path: Path, kind: type[TrainConfig] | type[EvalConfig]) -> dict:
    """The settings saved at `path`, or nothing for results made before settings were saved."""
    return kind.load(path).to_dict() if path.is_file() else {}


def _reusable(result: Path, previous: dict, current: dict, overwrite: bool) -> bool:
    """True when `result` exists and was made with exactly the `current` settings; an error naming what differs
    when it was made with others, unless `overwrite` (then False: make it again)."""
    if overwrite or not result.is_file():
        return False
    differs = [f"{k}: {previous.get(k, '(not recorded)')!r} -> {v!r}"
               for k, v in current.items() if previous.get(k) != v]
    if differs:
        raise UserError(f"{result.parent} was made with other settings ({'; '.join(differs)}). Use another folder, "
                        "or pass overwrite=True (in a notebook: overwrite = True in its parameters cell) to make it "
                        "again; the old one is replaced only when the new one is finished.")
    return True


def run_demo(preset: Preset | str | dict = DEFAULT_PRESET, out: str | Path | None = None, methods=DEMO_METHODS,
             overwrite: bool = False) -> Path:
    """Zero-shot baseline, then each method trained and evaluated, then the comparison."""
    preset, path, timer = Preset.load(preset), run_path(out, "demo"), StageTimer()
    split = preset.eval_config().split
    with run_folder(path, overwrite) as root:
        with timer.stage(f"zero-shot baseline ({preset.model})"):
            runs = [ensure_baseline(preset, root / "zero-shot")]
        for method in methods:
            with timer.stage(f"train {method}"):
                train(preset.train_config(method), root / method)
            with timer.stage(f"evaluate {method}"):
                evaluate_path(root / method, preset, RunLayout.of(root / method).evaluation(split), system=method)
            runs.append(root / method)
        with timer.stage("baselines and compare"):
            report = compare_runs(with_baselines(runs, root / "comparison" / "baselines"), root / "comparison")
        write_json(root / "timings.json", timer.seconds)
        write_text(root / "timings.md", timer.table() + "\n")
    print(f"\n{report}\nWall time by stage:\n{timer.table()}\n")
    print(f"Results in {path}: comparison/comparison.md, comparison/rouge_bars.png, comparison/side_by_side.md, "
          f"<method>/loss_curve.png, <method>/README.md (its model card)")
    return path


# Forgetting is measured on the task fine-tuned for, on one the multi-task mixture also trains (topics), and on
# one that neither mixture contains (saying the next turn): what each fine-tuning keeps of the base's abilities.
FORGETTING_TASKS = {"summary": "fine-tuned by both", "topic": "in the multi-task mixture only",
                    "next_turn": "in neither mixture"}


def run_forgetting(preset: Preset | str | dict = DEFAULT_PRESET, out: str | Path | None = None, method: str = "full",
                   overwrite: bool = False, overrides: dict | None = None, examples: int = 2) -> pd.DataFrame:
    """Each task scored on the base model, after summary-only (single-task) and after summary+topic (multi-task)
    fine-tuning, both for the same number of optimiser steps; ROUGE-L with 95% intervals, paired tests against the
    base, and a few prompts with every model's answer. Writes forgetting.md and forgetting.json.

    `overrides` (e.g. {"limit_train": 2000, "epochs": 1}) make the check cheaper on the real model.
    """
    preset = Preset.load(preset)
    single = preset.train_config(method, (overrides or {}) | {"multitask": False})
    steps = single.max_steps if single.max_steps > 0 else _steps_of(single)
    with run_folder(run_path(out, "forgetting"), overwrite) as root:
        systems = {"original": preset.model}
        for name, multitask in (("single-task", False), ("multi-task", True)):
            settings = (overrides or {}) | {"multitask": multitask, "max_steps": steps}
            systems[name] = train(preset.train_config(method, settings), root / name)
        evaluations = {(name, task): root / f"eval-{name}-{task}" for name in systems for task in FORGETTING_TASKS}
        for (name, task), folder in evaluations.items():
            evaluate_path(systems[name], preset, folder, task=task, system=name)
        table, tests = _forgetting_tables(evaluations)
        shown = _forgetting_examples(evaluations, examples)
        write_json(root / "forgetting.json", {"method": method, "optimizer_steps": steps, "tasks": FORGETTING_TASKS,
                                             "rougeL": table.to_dict(orient="records"),
                                             "paired_vs_original": tests.to_dict(orient="records")})
        write_text(root / "forgetting.md", _forgetting_report(method, steps, table, tests, shown))
    return table


def _steps_of(config: TrainConfig) -> int:
    """The optimiser steps single-task training would take: the multi-task run gets the same number."""
    from dialogsum_lab.training_data import select_dialogues

    pairs = sum(len(r) for r in select_dialogues(config)[0]["references"])
    per_step = config.batch_size * config.gradient_accumulation_steps
    return max(1, math.ceil(math.ceil(pairs / per_step) * config.epochs))


def _forgetting_tables(evaluations: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ROUGE-L mean [95% interval] per system and task, and paired bootstrap tests of each system vs the base."""
    from dialogsum_lab.reporting import load_system, significance_frame

    names = list(dict.fromkeys(name for name, _ in evaluations))
    rows, tests = [], []
    for name in names:
        row = {"system": name}
        for task in FORGETTING_TASKS:
            cell = read_json(evaluations[name, task] / RunLayout.METRICS)["rouge"]["mean_over_references"]["rougeL"]
            row[task] = f"{cell['mean']:.4f} [{cell['ci_low']:.4f}, {cell['ci_high']:.4f}]"
        rows.append(row)
    for task in FORGETTING_TASKS:
        systems = [load_system(evaluations[name, task]) | {"name": name} for name in names]
        pairs = significance_frame(systems)
        pairs = pairs[(pairs["rouge"] == "rougeL") & (pairs["a"] == "original")]
        tests += [{"task": task, **r} for r in pairs.drop(columns="rouge").to_dict(orient="records")]
    return pd.DataFrame(rows), pd.DataFrame(tests)


def _forgetting_examples(evaluations: dict, n: int) -> list[str]:
    """The first `n` prompts of the two retained-ability tasks, with the reference and every model's answer."""
    from dialogsum_lab.files import read_jsonl

    lines = []
    for task in ("topic", "next_turn"):
        answers = {name: read_jsonl(folder / RunLayout.PREDICTIONS) for (name, t), folder in evaluations.items()
                   if t == task}
        reads = "the dialogue up to its last turn" if task == "next_turn" else "the dialogue"
        first = next(iter(answers.values()))
        for i in range(min(n, len(first))):
            lines += [f"**{task}, {first[i]['id']}** (the model reads {reads}; reference: "
                      f"{first[i]['references'][0]!r})", ""]
            lines += [f"- {name}: {rows[i]['prediction']!r}" for name, rows in answers.items()] + [""]
    return lines


def _forgetting_report(method: str, steps: int, table: pd.DataFrame, tests: pd.DataFrame, examples: list[str]) -> str:
    from dialogsum_lab.metrics import format_p

    shown = tests.assign(p=[format_p(p, n) for p, n in zip(tests["p_value"], tests["samples"], strict=True)])
    which = "; ".join(f"{task}: {role}" for task, role in FORGETTING_TASKS.items())
    return "\n".join([
        f"# Forgetting after {method} fine-tuning ({steps} optimiser steps for each of single- and multi-task)", "",
        f"ROUGE-L F1, mean over references, with 95% bootstrap intervals. Tasks: {which}.", "",
        markdown_table(table), "", "Paired bootstrap, each fine-tuned model minus the original (b - a):", "",
        markdown_table(shown[["task", "b", "difference", "ci_low", "ci_high", "p", "significant"]]), "",
        "## Prompts and answers", "", *examples])
