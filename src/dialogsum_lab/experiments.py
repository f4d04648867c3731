"""The lab's whole story as functions: the demo (zero-shot vs three fine-tuning methods) and the
catastrophic-forgetting check (single- vs multi-task fine-tuning). The CLI and notebooks call these."""

import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from dialogsum_lab.config import load_preset, train_config
from dialogsum_lab.evaluation import run_evaluation
from dialogsum_lab.modeling import TINY_MODEL
from dialogsum_lab.reporting import compare_runs, markdown_table
from dialogsum_lab.runs import prepare_run_dir, write_json, write_text
from dialogsum_lab.training import train

DEMO_METHODS = ("full", "lora", "prompt_tuning")


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


def evaluate_path(path: str | Path, preset: dict, out: Path, task: str = "summary", system: str | None = None) -> dict:
    """Evaluate a model or training run with the preset's `evaluate` settings, loaded fresh."""
    settings, shared = preset["evaluate"], preset["train"]
    return run_evaluation(path, shared.get("data", "sample"), settings.get("split", "test"), out,
                          limit=settings.get("limit"), device=shared.get("device", "auto"), system=system, task=task,
                          batch_size=settings.get("batch_size", 16), max_new_tokens=settings.get("max_new_tokens", 200),
                          max_source_length=shared.get("max_source_length", 512),
                          bootstrap_samples=settings.get("bootstrap_samples", 1000))[1]


def ensure_run(preset_name: str | dict, method: str, run_dir: str | Path, overrides: dict | None = None) -> Path:
    """Train and evaluate `method` into `run_dir`, or reuse it if a finished run is already there.

    Lets each notebook run on its own or after the others without training twice.
    """
    run_dir = Path(run_dir)
    preset = load_preset(preset_name)
    split = preset["evaluate"].get("split", "test")
    if not (run_dir / "train_metrics.json").is_file():
        train(train_config(preset, method, overrides), run_dir)
    else:
        print(f"Reusing the finished {method} run in {run_dir}.")
    if not (run_dir / f"eval-{split}" / "metrics.json").is_file():
        evaluate_path(run_dir, preset, run_dir / f"eval-{split}", system=method)
    return run_dir


def ensure_baseline(preset_name: str | dict, out: str | Path) -> Path:
    """The zero-shot scores of the base model (always a fresh load), reused if already there."""
    out = Path(out)
    preset = load_preset(preset_name)
    if not (out / "metrics.json").is_file():
        evaluate_path(preset["train"].get("model", TINY_MODEL), preset, out, system="zero-shot")
    return out


def run_demo(preset_name: str | dict = "smoke", out: str | Path | None = None, methods=DEMO_METHODS,
             overwrite: bool = False) -> Path:
    """Zero-shot baseline, then each method trained and evaluated, then the comparison."""
    preset = load_preset(preset_name)
    root = prepare_run_dir(out, "demo", overwrite)
    split = preset["evaluate"].get("split", "test")
    timer = StageTimer()
    base = preset["train"].get("model", TINY_MODEL)
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
    print(f"Results in {root}: comparison/comparison.md, comparison/rouge_bars.png, comparison/side_by_side.md, "
          f"<method>/loss_curve.png")
    return root


def run_forgetting(preset_name: str | dict = "smoke", out: str | Path | None = None, method: str = "full",
                   overwrite: bool = False, overrides: dict | None = None) -> pd.DataFrame:
    """Both tasks (summary, topic) scored before training, after summary-only and after multi-task training.

    `overrides` (e.g. {"limit_train": 2000, "epochs": 1}) make the check cheaper on the real model.
    """
    preset = load_preset(preset_name)
    root = prepare_run_dir(out, "forgetting", overwrite)
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
    print(f"\nROUGE-L on each task before and after fine-tuning ({method}):\n{markdown_table(table)}")
    return table
