"""What the notebooks share: the preset choice, an environment report, the course's published figures."""

import platform
from pathlib import Path

import pandas as pd
import torch

from dialogsum_lab.metrics import ROUGE_TYPES

# The course's Week-2 lab results on the DialogSum test split (its "original", "instruct" = full
# fine-tuning, and "peft" = LoRA models), as printed in the lab; shown beside a learner's own on `lab`.
COURSE_RESULTS = {
    "original (course)": (0.2334, 0.0760, 0.2015, 0.2015),
    "full fine-tuning (course)": (0.4216, 0.1804, 0.3384, 0.3384),
    "LoRA / PEFT (course)": (0.4081, 0.1633, 0.3251, 0.3249),
}


def choose_preset(preset: str | None = None) -> str:
    """`lab` where a CUDA GPU is present, `smoke` elsewhere, unless the parameters cell names one."""
    chosen = preset or ("lab" if torch.cuda.is_available() else "smoke")
    reason = "as asked" if preset else ("a CUDA GPU is present" if chosen == "lab" else "no CUDA GPU found")
    print(f"Preset: {chosen} ({reason}).")
    return chosen


def environment_report() -> pd.DataFrame:
    """Versions and hardware, printed first so a result can always be traced to its setup."""
    import datasets
    import peft
    import transformers

    rows = {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "peft": peft.__version__, "datasets": datasets.__version__,
            "CUDA GPU": torch.cuda.get_device_name() if torch.cuda.is_available() else "none (CPU)",
            "bf16 supported": torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
            "CPU threads": torch.get_num_threads()}
    return pd.DataFrame(rows.items(), columns=["", "value"])


def with_course_figures(table: pd.DataFrame) -> pd.DataFrame:
    """A comparison table's ROUGE columns with the course's published rows appended, labelled as such."""
    course = pd.DataFrame([{"system": name, **dict(zip(ROUGE_TYPES, values, strict=True))}
                           for name, values in COURSE_RESULTS.items()])
    return pd.concat([table[["system", *ROUGE_TYPES]], course], ignore_index=True)


def run_root(out_dir: str | None = None) -> Path:
    """Where notebook runs go: `out_dir`, or runs/notebooks/ in the repository wherever Jupyter was started."""
    return Path(out_dir) if out_dir else Path(__file__).resolve().parents[2] / "runs" / "notebooks"


def show_image(path: str | Path):
    """Display a saved PNG (a loss curve, a chart) inline."""
    from IPython.display import Image

    return Image(filename=str(path))
