"""The `course` preset's cost on a CPU: each notebook's heavy stages, as the notebooks run them.

The model is a randomly initialised FLAN-T5 of flan-t5-base's exact shape (the real
checkpoint is not reachable here), saved and loaded through `from_pretrained` like the
real one. It never emits </s>, so every summary runs to max_new_tokens: the evaluation
times are an upper bound (flan-t5-base stops after ~30-60 tokens). The data are the
shared DialogSum dev dialogues, cut into train (the first 400) and test (the last 100)
files in a scratch folder, so lengths are real. Training and evaluation go through the
package's own `train` and `run_evaluation`, the code behind every notebook cell.
"""

import json
import tempfile
from pathlib import Path

from common import SHARED_DEV, parser, print_table, save, saved_model

from dialogsum_lab.evaluation import run_evaluation
from dialogsum_lab.experiments import StageTimer
from dialogsum_lab.files import read_json
from dialogsum_lab.merging import merge_adapter
from dialogsum_lab.modeling import TINY_MODEL
from dialogsum_lab.preset import Preset
from dialogsum_lab.training import train

# notebook -> the stages it runs on `course` (05 reuses the runs of 01-04 and only compares them)
NOTEBOOKS = {"01": ["zero-shot"], "02": ["train full", "evaluate full"],
             "03": ["train lora", "evaluate lora", "merge lora"],
             "04": ["train prompt_tuning", "evaluate prompt_tuning"]}


def flan_t5_base_random(folder: Path, smoke: bool) -> str:
    """The benchmarks' random model of flan-t5-base's shape (or the tiny one for --smoke), saved like a real
    checkpoint so the package loads it as it would load flan-t5-base."""
    return TINY_MODEL if smoke else saved_model("flan-t5-base-random", folder)


def dev_folder(source: Path, folder: Path) -> str:
    """The dev dialogues as a train/test folder (or the shipped sample when the shared file is missing)."""
    if not source.is_file():
        return "sample"
    rows = source.read_text(encoding="utf-8").splitlines()
    folder.mkdir()
    (folder / "train.jsonl").write_text("\n".join(rows[:400]) + "\n", encoding="utf-8")
    (folder / "test.jsonl").write_text("\n".join(rows[400:]) + "\n", encoding="utf-8")
    return str(folder)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--config", default="course", help="preset to time (course)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        preset = Preset.load(args.config, model=flan_t5_base_random(scratch / "model", args.smoke),
                             data=dev_folder(Path(args.data or SHARED_DEV), scratch / "data"))
        smoke = {"max_steps": 1, "limit_train": 8} if args.smoke else {}
        if args.smoke:
            preset = preset.with_evaluate(limit=4, max_new_tokens=8, bootstrap_samples=10)
        timer = StageTimer()
        evaluation = preset.eval_config()
        with timer.stage("zero-shot"):
            run_evaluation(preset.model, evaluation, scratch / "zero-shot", system="zero-shot")
        steps = {}
        for method in ("full", "lora", "prompt_tuning"):
            config = preset.train_config(method, smoke)
            with timer.stage(f"train {method}"):
                run = train(config, scratch / method)
            steps[method] = read_json(run / "train_metrics.json")["global_step"]
            with timer.stage(f"evaluate {method}"):
                run_evaluation(run, preset.eval_config(run=run), run / "eval", system=method)
            if method == "lora":
                with timer.stage("merge lora"):
                    merge_adapter(str(run), scratch / "merged")
        summary = json.loads((scratch / "zero-shot" / "metrics.json").read_text())["generation"]
    stages = timer.seconds
    notebooks = {nb: round(sum(stages[s] for s in names), 1) for nb, names in NOTEBOOKS.items()}
    print_table([("stage", "seconds"), *stages.items()])
    print_table([("notebook", "heavy stages, seconds"), *notebooks.items()])
    save("course" + ("-smoke" if args.smoke else ""),
         {"config": args.config, "model": "flan-t5-base-random" if not args.smoke else TINY_MODEL,
          "data": "shared dev dialogues: train = first 400, test = last 100" if not args.smoke else "sample",
          "evaluate": {"dialogues": evaluation.limit, "max_new_tokens": evaluation.max_new_tokens,
                       "batch_size": evaluation.batch_size, "mean_new_tokens": summary.get("mean_tokens")},
          "train_steps": steps, "batch_size": preset.train["batch_size"], "stages_seconds": stages,
          "notebook_heavy_stages_seconds": notebooks}, args.out)


if __name__ == "__main__":
    main()
