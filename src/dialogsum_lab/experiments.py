"""The lab's whole story as functions: the demo (zero-shot vs three fine-tuning methods) and the
catastrophic-forgetting check (single- vs multi-task fine-tuning). The CLI and notebooks call these."""

import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from dialogsum_lab.config import (
    DEMO_METHODS,
    EVAL_CONFIG,
    TINY_MODEL,
    TRAIN_CONFIG,
    EvalConfig,
    TrainConfig,
    eval_config,
    load_preset,
    train_config,
)
from dialogsum_lab.errors import UserError
from dialogsum_lab.evaluation import run_evaluation
from dialogsum_lab.reporting import compare_runs, markdown_table
from dialogsum_lab.runs import read_json, run_folder, run_path, write_json, write_text
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


def evaluate_path(path: str | Path, preset: dict, out: Path, task: str = "summary", system: str | None = None,
                  overwrite: bool = False) -> dict:
    """Evaluate a model or training run with the preset's `evaluate` settings (and the run's own), loaded fresh."""
    config = eval_config(preset, run=path, overrides={"task": task})
    return run_evaluation(path, config, out, system=system, overwrite=overwrite)[1]


def plan_run(preset_name: str | dict, method: str, run_dir: str | Path, overrides: dict | None = None,
             overwrite: bool = False) -> tuple[TrainConfig, bool]:
    """The settings `method` trains with, and whether `run_dir` already holds a finished run made with them.

    Lets each notebook run on its own or after the others without training twice. A run made with
    other settings (another preset, an edited one) is never reused: it is an error naming what differs,
    unless `overwrite` (then it is trained again and replaces the old one once it succeeds).
    """
    run_dir = Path(run_dir)
    config = train_config(load_preset(preset_name), method, overrides)
    reuse = _reusable(run_dir / "train_metrics.json", _saved(run_dir / TRAIN_CONFIG, TrainConfig), config.to_dict(),
                      overwrite)
    if reuse:
        print(f"Reusing the finished {method} run in {run_dir} (same settings).")
    return config, reuse


def ensure_evaluation(preset_name: str | dict, run_dir: str | Path, method: str, overwrite: bool = False) -> Path:
    """Score the run in `run_dir` with the preset's `evaluate` settings (and the run's own), unless it already
    was with exactly these settings; returns the evaluation folder."""
    run_dir = Path(run_dir)
    evaluation = eval_config(load_preset(preset_name), run=run_dir)
    out = run_dir / f"eval-{evaluation.split}"
    if not _reusable(out / "metrics.json", _saved(out / EVAL_CONFIG, EvalConfig), evaluation.to_dict(), overwrite):
        run_evaluation(run_dir, evaluation, out, system=method, overwrite=overwrite)
    return out


def ensure_run(preset_name: str | dict, method: str, run_dir: str | Path, overrides: dict | None = None,
               overwrite: bool = False) -> Path:
    """Train and evaluate `method` into `run_dir`, or reuse what is there if it was made with the same settings
    (see `plan_run`)."""
    config, reuse = plan_run(preset_name, method, run_dir, overrides, overwrite)
    if not reuse:
        train(config, run_dir, overwrite=overwrite)
    ensure_evaluation(preset_name, run_dir, method, overwrite=overwrite and not reuse)
    return Path(run_dir)


def ensure_baseline(preset_name: str | dict, out: str | Path, overwrite: bool = False) -> Path:
    """The zero-shot scores of the base model (always a fresh load), reused if made with the same settings."""
    out = Path(out)
    preset = load_preset(preset_name)
    model = preset["train"].get("model", TINY_MODEL)
    config = eval_config(preset)
    previous = _saved(out / EVAL_CONFIG, EvalConfig)
    if (out / "metrics.json").is_file():
        previous["model"] = read_json(out / "metrics.json").get("model")
    if not _reusable(out / "metrics.json", previous, config.to_dict() | {"model": model}, overwrite):
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


def run_demo(preset_name: str | dict = "smoke", out: str | Path | None = None, methods=DEMO_METHODS,
             overwrite: bool = False) -> Path:
    """Zero-shot baseline, then each method trained and evaluated, then the comparison."""
    preset = load_preset(preset_name)
    path = run_path(out, "demo")
    split = eval_config(preset).split
    timer = StageTimer()
    base = preset["train"].get("model", TINY_MODEL)
    with run_folder(path, overwrite) as root:
        with timer.stage(f"zero-shot baseline ({base})"):
            runs = [ensure_baseline(preset, root / "zero-shot")]
        for method in methods:
            with timer.stage(f"train {method}"):
                train(train_config(preset, method), root / method)
            with timer.stage(f"evaluate {method}"):
                evaluate_path(root / method, preset, root / method / f"eval-{split}", system=method)
            runs.append(root / method)
        with timer.stage("compare"):
            report = compare_runs(runs, root / "comparison")
        write_json(root / "timings.json", timer.seconds)
        write_text(root / "timings.md", timer.table() + "\n")
    print(f"\n{report}\nWall time by stage:\n{timer.table()}\n")
    print(f"Results in {path}: comparison/comparison.md, comparison/rouge_bars.png, comparison/side_by_side.md, "
          f"<method>/loss_curve.png")
    return path


def run_forgetting(preset_name: str | dict = "smoke", out: str | Path | None = None, method: str = "full",
                   overwrite: bool = False, overrides: dict | None = None) -> pd.DataFrame:
    """Both tasks (summary, topic) scored before training, after summary-only and after multi-task training.

    `overrides` (e.g. {"limit_train": 2000, "epochs": 1}) make the check cheaper on the real model.
    """
    preset = load_preset(preset_name)
    with run_folder(run_path(out, "forgetting"), overwrite) as root:
        systems = {"original": preset["train"].get("model", TINY_MODEL)}
        for name, multitask in (("single-task", False), ("multi-task", True)):
            settings = (overrides or {}) | {"multitask": multitask}
            systems[name] = train(train_config(preset, method, settings), root / name)
        rows = []
        for name, path in systems.items():
            row = {"system": name}
            for task in ("summary", "topic"):
                metrics = evaluate_path(path, preset, root / f"eval-{name}-{task}", task=task, system=name)
                row[f"{task}_rougeL"] = metrics["rouge"][metrics["primary_view"]]["rougeL"]["mean"]
            rows.append(row)
        table = pd.DataFrame(rows)
        write_text(root / "forgetting.md", markdown_table(table) + "\n")
    return table
