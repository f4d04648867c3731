"""The paths users run, timed on one GPU: training through the package's Trainer, and a whole test split.

Training: `dialogsum-lab train`'s own stages (`load_base`, `wrap`, `make_trainer`: Seq2SeqTrainer,
dynamic padding, length-grouped batches, bf16 autocast) on real dialogues with flan-t5-base's shape
(random weights, saved and loaded like a checkpoint). A hook on the model records every batch's padded
shape, so the FLOPs are those of the batches actually run (formula in bench_gpu.py; full = 3x forward,
PEFT = 2x); a callback stamps every optimiser step, so the first steps (start-up, any compiling) are
reported apart from the steady-state median. Variants: full and LoRA as the lab preset trains them,
LoRA with activation checkpointing, full with TF32 matmuls.

Evaluation: `summarize` over N dialogues (500 = DialogSum's test split), greedy, up to 200 new tokens
(a random model never stops, so every summary runs all 200: an upper bound), at two batch sizes, and
at the larger with `--compile` (static cache, compiled decoder step; its one-batch warm-up, which holds
the compiling, is timed apart, and its summaries are compared with the uncompiled ones).
`--smoke` runs every part on the CPU at tiny sizes, which is what the tests check.
"""

import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from bench_gpu import PEAK_BF16, forward_flops
from common import dialogues, median_time, parser, print_table, save, saved_model
from transformers import TrainerCallback

from dialogsum_lab.config import TrainConfig
from dialogsum_lab.generation import generation_config, summarize
from dialogsum_lab.methods import load_base, wrap
from dialogsum_lab.random_models import FLAN_T5_BASE_SHAPE
from dialogsum_lab.trainer_setup import make_trainer


class StepClock(TrainerCallback):
    """perf_counter at the start of training and at the end of every optimiser step (CUDA synchronised)."""

    def __init__(self):
        self.stamps = []

    def _stamp(self):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.stamps.append(time.perf_counter())

    def on_train_begin(self, args, state, control, **kwargs):
        self._stamp()

    def on_step_end(self, args, state, control, **kwargs):
        self._stamp()


def train_run(name: str, config: TrainConfig, shape: dict, warmup: int, tf32: bool = False) -> dict:
    """Train `config` through the package's stages; FLOPs from the padded shapes every forward saw."""
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
    model, tokenizer = load_base(config)
    shapes = []
    hook = model.register_forward_pre_hook(
        lambda module, args, kwargs: shapes.append((*kwargs["input_ids"].shape, kwargs["decoder_input_ids"].shape[1])),
        with_kwargs=True)
    model = wrap(model, config)
    with tempfile.TemporaryDirectory() as checkpoints:
        trainer = make_trainer(config, model, tokenizer, Path(checkpoints))
        clock = StepClock()
        trainer.add_callback(clock)
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        trainer.train()
    hook.remove()
    factor = 2 if config.method != "full" else 3
    per_step = [forward_flops(b, s, t, shape) * factor for b, s, t in shapes]  # one forward per step (no accum.)
    seconds = [b - a for a, b in zip(clock.stamps, clock.stamps[1:], strict=False)]
    steady, steady_flops = seconds[warmup:], per_step[warmup:len(seconds)]
    peak = next((v for k, v in PEAK_BF16.items() if torch.cuda.is_available() and k in torch.cuda.get_device_name()),
                None)
    achieved = sum(steady_flops) / sum(steady) if steady else None
    result = {"name": name, "method": config.method, "batch": config.batch_size, "steps": len(seconds),
              "first_steps_s": sum(seconds[:warmup]), "steady_median_step_s": statistics.median(steady) if steady
              else None, "steady_samples_per_s": config.batch_size * len(steady) / sum(steady) if steady else None,
              "mean_padded_source": statistics.mean(s for _, s, _ in shapes),
              "mean_padded_target": statistics.mean(t for _, _, t in shapes),
              "achieved_tflops": achieved / 1e12 if achieved else None,
              "mfu": achieved / peak if achieved and peak else None, "tf32": tf32,
              "gradient_checkpointing": config.gradient_checkpointing,
              "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None}
    print(result, flush=True)
    del trainer, model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return result


def evaluation(model_dir: str, texts: list[str], batch_size: int, new_tokens: int, device: str,
               compile: bool = False) -> tuple[dict, list[str]]:
    """`summarize` over `texts` after a one-batch warm-up (timed apart: with `compile` it holds the compiling)."""
    from dialogsum_lab.modeling import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(model_dir, dtype="auto", device=device)
    config = generation_config(model, compile=compile, max_new_tokens=new_tokens)
    warmup_s, _ = median_time(lambda: summarize(model, tokenizer, texts[:batch_size], config, batch_size,
                                                progress=False), 1)
    seconds, summaries = median_time(lambda: summarize(model, tokenizer, texts, config, batch_size, progress=False), 1)
    result = {"dialogues": len(texts), "batch_size": batch_size, "max_new_tokens": new_tokens, "compile": compile,
              "warmup_s": warmup_s, "seconds": seconds, "dtype": str(model.dtype)}
    print(result, flush=True)
    return result, summaries


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--steps", type=int, default=60, help="optimiser steps per training variant")
    p.add_argument("--warmup", type=int, default=10, help="first steps reported apart (start-up, compiling)")
    p.add_argument("--batch-size", type=int, default=32, help="training batch (the lab trains at 8 on 24 GB)")
    p.add_argument("--eval-n", type=int, default=500)
    args = p.parse_args()
    device = "cuda" if torch.cuda.is_available() and not args.smoke else "cpu"
    name = "cpu-random" if args.smoke else "flan-t5-base-random"
    if args.smoke:
        args.steps, args.warmup, args.batch_size, args.eval_n = 3, 1, 2, 4
    source, rows = dialogues(args.data, max(args.eval_n, args.steps * args.batch_size))
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = saved_model(name, Path(scratch) / "model")
        config = json.loads((Path(model_dir) / "config.json").read_text())
        shape = {key: config[key] for key in FLAN_T5_BASE_SHAPE}  # what the FLOP count needs, as saved
        data = Path(scratch) / "train.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        base = {"model": model_dir, "data": str(data), "train_split": "train", "eval_strategy": "no",
                "save_strategy": "no", "max_steps": args.steps, "batch_size": args.batch_size, "logging_steps": 10,
                "max_source_length": 512, "max_target_length": 128, "device": device, "weight_decay": 0.01}
        lab_lora = {"lora_r": 32, "lora_alpha": 32, "lora_dropout": 0.05, "lora_target_modules": ["q", "v"]}
        variants = [("full", {"method": "full", "learning_rate": 1e-5}, False),
                    ("full + tf32", {"method": "full", "learning_rate": 1e-5}, True),
                    ("lora", {"method": "lora", "learning_rate": 1e-3, **lab_lora}, False),
                    ("lora + checkpointing", {"method": "lora", "learning_rate": 1e-3, "gradient_checkpointing": True,
                                              **lab_lora}, False)]
        result = {"data": source, "model": name, "device": device, "training": [], "evaluation": []}
        file_name = "gpu_paths" + ("-smoke" if args.smoke else "")
        for n, v, tf32 in variants:  # saved after every part: a run cut off by its time limit keeps what it did
            result["training"].append(train_run(n, TrainConfig(**(base | v)), shape, args.warmup, tf32))
            save(file_name, result, args.out)
        texts = [r["dialogue"] for r in rows[:args.eval_n]]
        small, large = (2, 4) if args.smoke else (64, 128)
        previous = []  # the compiled run follows the uncompiled one at the same batch, to compare with
        for batch, compile in ((small, False), (large, False), (large, True)):
            evaluated, summaries = evaluation(model_dir, texts, batch, 4 if args.smoke else 200, device, compile)
            if compile:
                evaluated["identical_to_uncompiled"] = sum(a == b for a, b in zip(summaries, previous, strict=True))
            previous = summaries
            result["evaluation"].append(evaluated)
            save(file_name, result, args.out)
    training, evals = result["training"], result["evaluation"]
    print_table([("training", "batch", "first steps s", "steady s/step", "samples/s", "TFLOP/s", "MFU", "peak GiB"),
                 *[(r["name"], r["batch"], f"{r['first_steps_s']:.1f}", f"{r['steady_median_step_s']:.3f}",
                    f"{r['steady_samples_per_s']:.1f}", f"{r['achieved_tflops'] or 0:.1f}",
                    f"{r['mfu']:.1%}" if r["mfu"] else "-",
                    f"{r['peak_memory_gib']:.1f}" if r["peak_memory_gib"] else "-") for r in training]])
    print_table([("evaluation", "batch", "warm-up s", "seconds", "identical"),
                 *[(f"{e['dialogues']} dialogues, {e['max_new_tokens']} tokens{', compiled' * e['compile']}",
                    e["batch_size"], f"{e['warmup_s']:.1f}", f"{e['seconds']:.1f}",
                    e.get("identical_to_uncompiled", "-")) for e in evals]])


if __name__ == "__main__":
    main()
