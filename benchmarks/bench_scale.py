"""Benchmark 6, several processes: `dialogsum-lab train` under torchrun, data parallel (DDP) and sharded (FSDP).

Trains flan-t5-base's shape (random weights, saved and loaded like a checkpoint) on 1 process and on every GPU,
reports samples/s and the scaling efficiency (samples/s on N / (N x samples/s on 1)), and checks that each run's
saved model loads and generates (`dialogsum-lab evaluate`). On one GPU it still proves the FSDP path: wrapping,
a full state dict saved, reloaded and evaluated. `--smoke` runs the same plan on 2 CPU processes with the tiny
model and no FSDP (accelerate shards over GPUs only).
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from common import parser, print_table, save

from dialogsum_lab.modeling import TINY_MODEL, load_tokenizer
from dialogsum_lab.random_models import random_flan_t5


def torchrun(processes: int, args: list[str]) -> None:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
               "-m", "dialogsum_lab.cli", "train", *args]
    subprocess.run(command, check=True)


def plans(processes: int, gpu: bool) -> list[tuple[str, int, list[str]]]:
    runs = [("lora", 1, []), ("full", 1, [])]
    if processes > 1:
        runs += [("lora", processes, []), ("full", processes, [])]
    if gpu:
        runs += [("full", processes, ["--fsdp", "true", "--gradient-checkpointing", "true"])]
    return runs


def main() -> None:
    args = parser(__doc__).parse_args()
    gpu = not args.smoke
    if gpu and not torch.cuda.is_available():
        raise SystemExit("bench_scale.py needs CUDA GPUs (or --smoke for 2 CPU processes)")
    processes = torch.cuda.device_count() if gpu else 2
    work = Path(tempfile.mkdtemp(prefix="scale-"))
    model = TINY_MODEL
    if gpu:
        model = str(work / "flan-t5-base-random")
        torch.manual_seed(0)
        random_flan_t5("cpu").save_pretrained(model)
        load_tokenizer(TINY_MODEL).save_pretrained(model)
    steps = 30 if gpu else 2
    common = ["--model", model, "--max-steps", str(steps), "--batch-size", "8", "--eval-strategy", "no",
              "--save-strategy", "no", "--logging-steps", "10", "--device", "cuda" if gpu else "cpu"]
    rows = []
    for method, n, extra in plans(processes, gpu):
        name = f"{method}-{n}proc{'-fsdp' if extra else ''}"
        torchrun(n, ["--method", method, *common, *extra, "--out", str(work / name)])
        metrics = json.loads((work / name / "train_metrics.json").read_text())
        subprocess.run([sys.executable, "-m", "dialogsum_lab.cli", "evaluate", str(work / name), "--limit", "8",
                        "--max-new-tokens", "16", "--bootstrap-samples", "10"], check=True)
        evaluated = json.loads((work / name / "eval-test" / "metrics.json").read_text())
        rows.append({"run": name, "method": method, "processes": n, "parallelism": metrics["parallelism"],
                     "samples_per_s": metrics["train_samples_per_second"], "peak_memory_mb": metrics["peak_memory_mb"],
                     "weights_in_sync": metrics["weights_identical_across_processes"],
                     "final_loss": metrics["final_train_loss"], "evaluated_dialogues": evaluated["n_examples"]})
    single = {r["method"]: r["samples_per_s"] for r in rows if r["processes"] == 1}
    for r in rows:
        r["scaling_efficiency"] = (round(r["samples_per_s"] / (r["processes"] * single[r["method"]]), 3)
                                   if r["processes"] > 1 and r["parallelism"] == "ddp" else None)
    print_table([("run", "parallelism", "samples/s", "efficiency", "peak MB", "in sync", "evaluated")] +
                [(r["run"], r["parallelism"], r["samples_per_s"], r["scaling_efficiency"], r["peak_memory_mb"],
                  r["weights_in_sync"], r["evaluated_dialogues"]) for r in rows])
    save("gpu_scale" if gpu else "scale_smoke", {"gpus": torch.cuda.device_count(), "steps": steps, "runs": rows},
         args.out)


if __name__ == "__main__":
    main()
