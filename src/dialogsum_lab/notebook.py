"""What the notebooks share: choosing the preset, quiet output, one run folder per preset and model, the
course's published figures, and compact tables."""

import os
import platform
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from huggingface_hub import model_info, try_to_load_from_cache

from dialogsum_lab.config import DEFAULT_MODEL, DEFAULT_PRESET
from dialogsum_lab.metrics import ROUGE_TYPES
from dialogsum_lab.preset import Preset

# The course's Week-2 lab results on the DialogSum test split (its "original", "instruct" = full
# fine-tuning, and "peft" = LoRA models), as printed in the lab.
COURSE_RESULTS = {
    "original": (0.2334, 0.0760, 0.2015, 0.2015),
    "full fine-tuning": (0.4216, 0.1804, 0.3384, 0.3384),
    "LoRA": (0.4081, 0.1633, 0.3251, 0.3249),
}
# The lab's "absolute percentage improvement" lines (differences in F1 points): (better, than)
COURSE_IMPROVEMENTS = (("full fine-tuning", "original"), ("LoRA", "original"), ("LoRA", "full fine-tuning"))
BANNERS = {
    "miniature": "**Synthetic miniature.** No GPU and no copy of google/flan-t5-base: the `miniature` preset runs "
                 "every cell with `miniature-t5`, a small model trained for this project on a synthetic dialogue "
                 "world, fine-tuned here on that world's dialogues. The effects you see are real and measured; "
                 "the numbers say nothing about flan-t5-base on DialogSum (run `course` or `lab` for those).",
    "smoke": "**Toy model.** The `smoke` preset runs every cell with `tiny-random-t5`, a randomly initialised "
             "model. Its summaries are gibberish and its scores meaningless: it shows the plumbing only.",
    "course": "**The real google/flan-t5-base on a CPU.** Short trainings on a subset and 50 test dialogues: real "
              "scores of briefly trained models, not the course's converged figures (`lab`, on a GPU).",
    "lab": "**The lab's full recipe** on a GPU: google/flan-t5-base on all of DialogSum.",
}


@dataclass
class Session:
    """What a notebook's first cell settles: the preset's name, its settings and where this notebook's runs live."""

    name: str
    preset: Preset
    root: Path


def setup(preset: str | None = None, model: str | None = None, data: str | None = None,
          out_dir: str | None = None) -> Session:
    """Choose the preset, point it at `model` and `data` if given, quieten the libraries, and show the setup."""
    from IPython.display import Markdown, display

    quiet()
    preset, reason = choose_preset(preset, model)
    settings = Preset.load(preset, model=model, data=data)
    root = run_root(out_dir, preset, settings.model)
    name = Path(preset).stem
    display(Markdown(f"> Preset **{name}** ({reason}). {BANNERS.get(name, '')}\n>\n> Runs go to `{root}`"))
    display(environment_report())
    return Session(preset, settings, root)


def choose_preset(preset: str | None = None, model: str | None = None) -> tuple[str, str]:
    """`preset` if named; else `lab` on a CUDA GPU, `course` where the real model can be loaded, and otherwise the
    offline default, the `miniature`.

    Returns the preset and why it was chosen.
    """
    if preset:
        return preset, "as asked"
    if torch.cuda.is_available():
        return "lab", "a CUDA GPU is present"
    source = real_model_source(model)
    if source:
        return "course", f"no GPU; {source}"
    return DEFAULT_PRESET, f"no GPU, and {model or DEFAULT_MODEL} is neither on disk nor reachable"


def real_model_source(model: str | None = None) -> str | None:
    """Where the real model would load from (a local folder, the Hugging Face cache, the Hub), or None."""
    name = model or DEFAULT_MODEL
    if Path(name).expanduser().is_dir():
        return f"the model is in {name}" if (Path(name).expanduser() / "config.json").is_file() else None
    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        return f"{name} is in the Hugging Face cache"
    return f"{name} is on the Hugging Face Hub" if _on_hub(name) else None


def _on_hub(name: str) -> bool:
    """True when the Hub answers for `name` within a few seconds (never when HF_HUB_OFFLINE is set)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    try:
        model_info(name, timeout=5)
    except Exception:  # offline, blocked, unknown: all mean "not reachable from here"
        return False
    return True


def run_root(out_dir: str | None = None, preset: str = DEFAULT_PRESET, model: str = DEFAULT_MODEL) -> Path:
    """This preset's and model's folder of notebook runs, under `out_dir` (default: runs/notebooks/ in the
    repository). Runs of one preset or model never sit where another's could be reused."""
    base = Path(out_dir) if out_dir else Path(__file__).resolve().parents[2] / "runs" / "notebooks"
    model_name = Path(model).name if Path(model).expanduser().is_dir() else model.replace("/", "--")
    return base / f"{Path(preset).stem}-{model_name}"


def quiet() -> None:
    """Keep saved notebooks readable: no library progress bars (saved as widgets frozen at 0%; the package's own
    generation bar is text in a kernel already, `generation._in_notebook`), and, in this kernel only, not the
    harmless deprecation notice peft's own calls raise in cells that use peft directly (`get_peft_model`)."""
    import warnings

    import datasets
    import transformers

    from dialogsum_lab.modeling import CHECKPOINTING_NOTICE

    warnings.filterwarnings("ignore", message=CHECKPOINTING_NOTICE, category=FutureWarning)
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    pd.set_option("display.max_colwidth", 200)  # long generations are cut for display, not in the files


def environment_report() -> pd.DataFrame:
    """Versions and hardware, shown first so a result can always be traced to its setup."""
    import datasets
    import peft
    import transformers

    rows = {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "peft": peft.__version__, "datasets": datasets.__version__,
            "CUDA GPU": torch.cuda.get_device_name() if torch.cuda.is_available() else "none (CPU)",
            "CPU threads": torch.get_num_threads()}
    return pd.DataFrame(rows.items(), columns=["", "value"]).set_index("")


def finish_run(session: Session, trainer, config, run_dir: Path, reuse: bool, overwrite: bool = False):
    """What notebooks 02-04 do after `trainer.train()`: save the run (unless an equal one was reused), score it with
    the preset's settings, and plot its loss curve. The Trainer itself is built and trained in view."""
    from dialogsum_lab.experiments import ensure_evaluation
    from dialogsum_lab.files import read_json
    from dialogsum_lab.reporting import plot_loss_curve
    from dialogsum_lab.runs import RunLayout
    from dialogsum_lab.training import save_run

    if not reuse:
        save_run(trainer, config, run_dir, overwrite=overwrite)
    ensure_evaluation(session.preset, run_dir, config.method)
    history = read_json(RunLayout.of(run_dir).file(RunLayout.TRAINER_STATE))["log_history"]
    return plot_loss_curve(history, f"{config.method} on {config.model}")


def scores(comparison: str | Path | pd.DataFrame) -> pd.DataFrame:
    """A comparison (comparison.csv or its folder) as one compact row per system: each score with its interval, and
    the detail view's shares (details.py) where the comparison has them."""
    from dialogsum_lab.details import DETAIL_COLUMNS

    table = comparison if isinstance(comparison, pd.DataFrame) else _comparison_table(comparison)
    frame = pd.DataFrame({t: [f"{m:.4f} {ci}" for m, ci in zip(table[t], table[f"{t}_ci"], strict=True)]
                          for t in ROUGE_TYPES}, index=pd.Index(table["system"], name="system"))
    for key, label in DETAIL_COLUMNS.items():
        if key in table and table[key].notna().any():
            frame[label] = [f"{v:.0%}" if v == v else "" for v in table[key]]
    return frame


def findings(comparison: str | Path, baseline: str = "zero-shot", rouge: str = "rouge1"):
    """What a comparison shows, said from its own files, never typed: each system against the baseline (the
    difference in ROUGE points with its paired 95% interval, and whether it exceeds the noise), and its share
    of trainable parameters. Notebooks display this where their prose would otherwise claim a result."""
    from IPython.display import Markdown

    folder = Path(comparison)
    table = _comparison_table(folder).set_index("system")
    tests = pd.read_csv(folder / "significance.csv")
    lines = [f"**What this run shows** (ROUGE-{rouge.removeprefix('rouge')}, mean over references, "
             f"{len(table)} systems):", ""]
    for system in table.index.drop(baseline, errors="ignore")[table["kind"].drop(baseline, errors="ignore")
                                                              != "baseline"]:
        row = tests[(tests["a"] == baseline) & (tests["b"] == system) & (tests["rouge"] == rouge)]
        if row.empty:
            continue
        t = row.iloc[0]
        verdict = ("better than" if t["ci_low"] > 0 else "worse than" if t["ci_high"] < 0
                   else "not distinguishable from")
        lines.append(f"- **{system}** is {verdict} {baseline}: {table.loc[system, rouge]:.3f} vs "
                     f"{table.loc[baseline, rouge]:.3f}, {t['difference'] * 100:+.1f} points "
                     f"[{t['ci_low'] * 100:+.1f}, {t['ci_high'] * 100:+.1f}], training "
                     f"{table.loc[system, 'trainable_%']:.2f}% of the parameters.")
    if (folder / "baselines.md").is_file():  # compare --baselines: ROUGE and details against systems nobody trained
        lines += ["", (folder / "baselines.md").read_text(encoding="utf-8")]
    return Markdown("\n".join(lines))


def _comparison_table(path: str | Path) -> pd.DataFrame:
    """comparison.csv as `compare_runs` wrote it, given the file or its folder."""
    path = Path(path)
    return pd.read_csv(path / "comparison.csv" if path.is_dir() else path)


def with_course_figures(comparison: str | Path, preset: str, baseline: str = "zero-shot"):
    """The course's published scores and improvement lines beside this notebook's, in the course's own view
    (mean over references; rougeLsum without sentence splitting, as the lab computed it, so it equals rougeL),
    labelled, with a caption that says whether the two can be compared at all."""
    table = _comparison_table(comparison).set_index("system")
    lab = table[list(ROUGE_TYPES[:3])].assign(rougeLsum=table["rougeLsum_course_lab"])
    rows = [{"source": "course", "system": name, **dict(zip(ROUGE_TYPES, values, strict=True))}
            for name, values in COURSE_RESULTS.items()]
    rows += [{"source": "course", "system": f"{a} minus {b} (points)",
              **{t: _points(COURSE_RESULTS[a][i] - COURSE_RESULTS[b][i]) for i, t in enumerate(ROUGE_TYPES)}}
             for a, b in COURSE_IMPROVEMENTS]
    rows += [{"source": "yours", "system": s, **{t: round(float(r[t]), 4) for t in ROUGE_TYPES}}
             for s, r in lab.iterrows()]
    if baseline in lab.index:
        rows += [{"source": "yours", "system": f"{s} minus {baseline} (points)",
                  **{t: _points(r[t] - lab.loc[baseline, t]) for t in ROUGE_TYPES}}
                 for s, r in lab.iterrows() if s != baseline]
    name = Path(preset).stem
    caption = CAPTIONS.get(name, "Both: flan-t5-base on the DialogSum test split.")
    frame = pd.DataFrame(rows).set_index(["source", "system"])
    return frame.style.set_caption(
        "ROUGE F1 in the course's view: mean over references, rougeLsum as the lab computed it (no sentence "
        f"split, so it equals rougeL; our default rougeLsum splits sentences and reads higher). {caption}").format(
        lambda v: v if isinstance(v, str) else f"{v:.4f}")


CAPTIONS = {"smoke": "Toy model: your rows are not comparable with the course's.",
            "miniature": "Miniature: a synthetic world, so your rows show the same effects in miniature and are not "
                         "comparable with the course's numbers.",
            "course": "Yours: flan-t5-base after a few dozen CPU steps on 50 test dialogues; the course's: converged "
                      "models on all 500."}


def _points(difference: float) -> str:
    """A difference of two ROUGE F1 scores as the lab prints it, named for what it is: F1 points (x 100)."""
    return f"{difference * 100:+.2f}"


def peft_settings(config) -> pd.DataFrame:
    """A peft config's settings that differ from its class's defaults: what this method chose, out of the dozens of
    fields the config's repr prints."""
    chosen = config.to_dict()
    defaults = type(config)().to_dict()
    rows = {k: sorted(v) if isinstance(v, set) else getattr(v, "value", v) for k, v in chosen.items()
            if defaults.get(k) != v}
    return pd.DataFrame({"value": [str(v) for v in rows.values()]},
                        index=pd.Index(list(rows), name=type(config).__name__))


def key_arguments(args) -> pd.DataFrame:
    """The training arguments that decide a run, out of the ~150 a `Seq2SeqTrainingArguments` holds."""
    keys = ("learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
            "gradient_accumulation_steps", "weight_decay", "lr_scheduler_type", "warmup_steps", "bf16",
            "train_sampling_strategy", "logging_steps", "save_strategy", "output_dir")
    return pd.DataFrame({"value": [str(getattr(args, k)) for k in keys]}, index=pd.Index(keys, name="argument"))


def show_image(path: str | Path):
    """Display a saved PNG (a loss curve, a chart) inline."""
    from IPython.display import Image

    return Image(filename=str(path))
