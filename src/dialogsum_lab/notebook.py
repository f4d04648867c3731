"""What the notebooks share: choosing the preset, quiet output, one run folder per preset and model, the
course's published figures, and compact tables."""

import os
import platform
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from huggingface_hub import model_info, try_to_load_from_cache

from dialogsum_lab.config import DEFAULT_MODEL, load_preset
from dialogsum_lab.metrics import ROUGE_TYPES

# The course's Week-2 lab results on the DialogSum test split (its "original", "instruct" = full
# fine-tuning, and "peft" = LoRA models), as printed in the lab.
COURSE_RESULTS = {
    "original": (0.2334, 0.0760, 0.2015, 0.2015),
    "full fine-tuning": (0.4216, 0.1804, 0.3384, 0.3384),
    "LoRA": (0.4081, 0.1633, 0.3251, 0.3249),
}
# The lab's "absolute percentage improvement" lines: (better, than)
COURSE_IMPROVEMENTS = (("full fine-tuning", "original"), ("LoRA", "original"), ("LoRA", "full fine-tuning"))
BANNERS = {
    "smoke": "**Toy model.** No GPU and no copy of google/flan-t5-base: the `smoke` preset runs every cell with "
             "`tiny-random-t5`, a randomly initialised model. Its summaries are gibberish and its scores "
             "meaningless; read the mechanics here and the numbers on `course` or `lab`.",
    "course": "**The real google/flan-t5-base on a CPU.** Short trainings on a subset and 50 test dialogues: real "
              "scores of briefly trained models, not the course's converged figures (`lab`, on a GPU).",
    "lab": "**The lab's full recipe** on a GPU: google/flan-t5-base on all of DialogSum.",
}


@dataclass
class Session:
    """What a notebook's first cell settles: the preset, its settings and where this notebook's runs live."""

    preset: str
    settings: dict
    root: Path


def setup(preset: str | None = None, model: str | None = None, data: str | None = None,
          out_dir: str | None = None) -> Session:
    """Choose the preset, point it at `model` and `data` if given, quieten the libraries, and show the setup."""
    from IPython.display import Markdown, display

    quiet()
    preset, reason = choose_preset(preset, model)
    settings = load_preset(preset, model=model, data=data)
    root = run_root(out_dir, preset, settings["train"]["model"])
    name = Path(preset).stem
    display(Markdown(f"> Preset **{name}** ({reason}). {BANNERS.get(name, '')}\n>\n> Runs go to `{root}`"))
    display(environment_report())
    return Session(preset, settings, root)


def choose_preset(preset: str | None = None, model: str | None = None) -> tuple[str, str]:
    """`preset` if named; else `lab` on a CUDA GPU, `course` where the real model can be loaded, `smoke` otherwise.

    Returns the preset and why it was chosen.
    """
    if preset:
        return preset, "as asked"
    if torch.cuda.is_available():
        return "lab", "a CUDA GPU is present"
    source = real_model_source(model)
    if source:
        return "course", f"no GPU; {source}"
    return "smoke", f"no GPU, and {model or DEFAULT_MODEL} is neither on disk nor reachable"


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


def run_root(out_dir: str | None = None, preset: str = "smoke", model: str = DEFAULT_MODEL) -> Path:
    """This preset's and model's folder of notebook runs, under `out_dir` (default: runs/notebooks/ in the
    repository). Runs of one preset or model never sit where another's could be reused."""
    base = Path(out_dir) if out_dir else Path(__file__).resolve().parents[2] / "runs" / "notebooks"
    model_name = Path(model).name if Path(model).expanduser().is_dir() else model.replace("/", "--")
    return base / f"{Path(preset).stem}-{model_name}"


def quiet() -> None:
    """Keep saved notebooks readable: no library progress bars (saved as widgets frozen at 0%), and the
    package's own generation bar as one line of text."""
    import datasets
    import transformers

    from dialogsum_lab import generation

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    generation.TEXT_PROGRESS = True
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


def scores(comparison: str | Path | pd.DataFrame) -> pd.DataFrame:
    """A comparison (comparison.csv or its folder) as one compact row per system: each score with its interval."""
    table = comparison if isinstance(comparison, pd.DataFrame) else _comparison_table(comparison)
    return pd.DataFrame({t: [f"{m:.4f} {ci}" for m, ci in zip(table[t], table[f"{t}_ci"], strict=True)]
                         for t in ROUGE_TYPES}, index=pd.Index(table["system"], name="system"))


def _comparison_table(path: str | Path) -> pd.DataFrame:
    """comparison.csv as `compare_runs` wrote it, given the file or its folder."""
    path = Path(path)
    return pd.read_csv(path / "comparison.csv" if path.is_dir() else path)


def with_course_figures(comparison: str | Path, preset: str, baseline: str = "zero-shot"):
    """The course's published scores and improvement lines beside this notebook's, labelled, with a caption
    that says whether the two can be compared."""
    table = _comparison_table(comparison)
    rows = [{"source": "course", "system": name, **dict(zip(ROUGE_TYPES, values, strict=True))}
            for name, values in COURSE_RESULTS.items()]
    rows += [{"source": "course", "system": f"{a} over {b}",
              **{t: _points(COURSE_RESULTS[a][i] - COURSE_RESULTS[b][i]) for i, t in enumerate(ROUGE_TYPES)}}
             for a, b in COURSE_IMPROVEMENTS]
    rows += [{"source": "yours", "system": s, **{t: round(v, 4) for t, v in zip(ROUGE_TYPES, r, strict=True)}}
             for s, r in zip(table["system"], table[list(ROUGE_TYPES)].to_numpy(), strict=True)]
    if baseline in set(table["system"]):
        base = table.set_index("system").loc[baseline]
        rows += [{"source": "yours", "system": f"{s} over {baseline}", **{t: _points(r[t] - base[t])
                                                                          for t in ROUGE_TYPES}}
                 for s, r in table.set_index("system").iterrows() if s != baseline]
    name = Path(preset).stem
    caption = {"smoke": "Toy model: your rows are not comparable with the course's.",
               "course": "Yours: flan-t5-base after a few dozen CPU steps on 50 test dialogues; the course's: "
                         "converged models on all 500."}.get(name, "Both: flan-t5-base on the DialogSum test split.")
    frame = pd.DataFrame(rows).set_index(["source", "system"])
    return frame.style.set_caption(f"ROUGE F1, mean over references. {caption}").format(
        lambda v: v if isinstance(v, str) else f"{v:.4f}")


def _points(difference: float) -> str:
    """A difference of two ROUGE F1 scores as the lab prints it: absolute percentage points."""
    return f"{difference * 100:+.2f}%"


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
