"""GPU check: bf16 training throughput and MFU (full and LoRA), generation batched vs the lab's loop,
and peak memory, on flan-t5-base's architecture with random weights (nothing to download).

Training steps use fixed shapes (source 512, target 128 tokens) so the FLOP count is exact:
forward matmul FLOPs per sequence, with d = d_model, i = heads x d_kv, f = d_ff, L layers,
S source and T target tokens, V vocabulary:
  encoder  S * L * (8di + 4Si + 6df)
  decoder  T * L * (8di + 4Ti + 4di + 4Si + 6df) + S * L * 4di   (self-attn, cross-attn q/o, k/v on S)
  lm head  T * 2dV
Training FLOPs = 3 x forward for full fine-tuning (backward = 2 x forward); for LoRA the frozen
weights need no weight gradients, so 2 x forward (the adapters' own FLOPs are < 1% and left out).
MFU = achieved FLOP/s / the GPU's dense bf16 peak (989 TFLOP/s for H100 SXM and H200).
"""

import json
import time
from pathlib import Path

import torch
from bench_generate import lab_loop
from common import machine, model_and_tokenizer, print_table, save, saved_model
from peft import LoraConfig, TaskType, get_peft_model

from dialogsum_lab.generation import generation_config, summarize
from dialogsum_lab.modeling import count_parameters
from dialogsum_lab.random_models import FLAN_T5_BASE_SHAPE

# The lab's LoRA (as configs/lab.yaml); built here directly so this check needs no `datasets`.
LAB_LORA = {"r": 32, "lora_alpha": 32, "target_modules": ["q", "v"], "lora_dropout": 0.05, "bias": "none"}
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "A10G": 125e12, "L4": 121e12}
SRC, TGT = 512, 128


def forward_flops(batch: int, s: int = SRC, t: int = TGT, shape: dict = FLAN_T5_BASE_SHAPE) -> float:
    d, f, n = shape["d_model"], shape["d_ff"], shape["num_layers"]
    i, v = shape["num_heads"] * shape["d_kv"], shape["vocab_size"]
    encoder = s * n * (8 * d * i + 4 * s * i + 6 * d * f)
    decoder = t * n * (8 * d * i + 4 * t * i + 4 * d * i + 4 * s * i + 6 * d * f) + s * n * 4 * d * i
    return batch * (encoder + decoder + t * 2 * d * v)


def train_throughput(method: str, batch: int, steps: int = 12, warmup: int = 3, compile: bool = False) -> dict:
    model, _ = model_and_tokenizer("flan-t5-base-random", "cuda")
    if method == "lora":
        model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_2_SEQ_LM, **LAB_LORA))
    model.train()
    if compile:
        model.forward = torch.compile(model.forward)  # what Trainer's torch_compile=True does to the model
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5, fused=True)
    g = torch.Generator(device="cuda").manual_seed(0)
    ids = torch.randint(3, 32128, (batch, SRC), device="cuda", generator=g)
    labels = torch.randint(3, 32128, (batch, TGT), device="cuda", generator=g)
    mask = torch.ones_like(ids)
    torch.cuda.reset_peak_memory_stats()
    for step in range(warmup + steps):
        if step == warmup:
            torch.cuda.synchronize()
            start = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / steps
    flops = forward_flops(batch) * (3 if method == "full" else 2)
    peak = next((v for k, v in PEAK_BF16.items() if k in torch.cuda.get_device_name()), None)
    result = {"method": method, "batch": batch, "compiled": compile, "seconds_per_step": seconds,
              "samples_per_s": batch / seconds,
              "tokens_per_s": batch * (SRC + TGT) / seconds, "model_tflops_per_step": flops / 1e12,
              "achieved_tflops": flops / seconds / 1e12, "mfu": flops / seconds / peak if peak else None,
              "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30,
              "trainable": count_parameters(model)["trainable"]}
    del model, optimizer
    torch.cuda.empty_cache()
    return result


def generation(texts: list[str], new_tokens: int, batch_size: int) -> dict:
    model, tokenizer = model_and_tokenizer("flan-t5-base-random", "cuda")
    model = model.to(torch.bfloat16)  # what load_model_and_tokenizer gives on a bf16 GPU
    config = generation_config(model, max_new_tokens=new_tokens, min_new_tokens=new_tokens)
    summarize(model, tokenizer, texts[:batch_size], config, batch_size, progress=False)  # warm-up
    torch.cuda.reset_peak_memory_stats()
    torch.cuda.synchronize()
    start = time.perf_counter()
    ours = summarize(model, tokenizer, texts, config, batch_size, max_source_length=4096, progress=False)
    torch.cuda.synchronize()
    batched = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**30
    start = time.perf_counter()
    lab = lab_loop(model, tokenizer, texts, new_tokens)
    torch.cuda.synchronize()
    loop = time.perf_counter() - start
    return {"dialogues": len(texts), "new_tokens": new_tokens, "batch_size": batch_size,
            "batched_seconds": batched, "loop_seconds": loop, "batched_dialogues_per_s": len(texts) / batched,
            "loop_dialogues_per_s": len(texts) / loop, "speedup": loop / batched, "peak_memory_gib": peak,
            "identical_summaries": sum(a == b for a, b in zip(ours, lab, strict=True))}


def compile_check() -> list[dict]:
    """Does torch.compile pay for training here? Eager vs compiled, same shapes, same process."""
    rows = []
    for method in ("full", "lora"):
        for compiled in (False, True):
            start = time.perf_counter()
            rows.append(train_throughput(method, 64, compile=compiled) | {"wall_s": time.perf_counter() - start})
            print(rows[-1], flush=True)
    return rows


def trainer_compile_check(steps: int = 80) -> list[dict]:
    """The real path: `dialogsum-lab train` (Seq2SeqTrainer, dynamic padding, length-grouped batches,
    variable shapes) on DialogSum, LoRA at batch 32, eager vs `torch_compile: true`."""
    from dialogsum_lab.config import TrainConfig
    from dialogsum_lab.files import read_json
    from dialogsum_lab.training import train

    root = Path(__file__).resolve().parents[1]
    base = saved_model("flan-t5-base-random", Path("/tmp/flan-t5-base-random"))
    data = next(iter(sorted((root / ".gpu-data").glob("*.jsonl"))), None)
    rows = []
    for compiled in (False, True):
        config = TrainConfig(method="lora", model=str(base), data=str(data) if data else "sample",
                             train_split="validation" if data else "train", eval_strategy="no", save_strategy="no",
                             max_steps=steps, batch_size=32, logging_steps=20, torch_compile=compiled)
        start = time.perf_counter()
        run = train(config, Path(f"/tmp/trainer-compile-{compiled}"), overwrite=True)
        metrics = read_json(run / "train_metrics.json")
        rows.append({"torch_compile": compiled, "steps": steps, "wall_s": time.perf_counter() - start,
                     **{k: metrics[k] for k in ("train_seconds", "train_samples_per_second", "peak_memory_mb")}})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    import sys

    if "--trainer-compile-check" in sys.argv:
        save("gpu-trainer-compile", {"runs": trainer_compile_check()}, None)
        return
    if "--compile-check" in sys.argv:
        save("gpu-compile", {"model": "flan-t5-base-random", "batch": 64, "runs": compile_check()}, None)
        return
    root = Path(__file__).resolve().parents[1]
    files = sorted((root / ".gpu-data").glob("*.jsonl")) or sorted((root / "data" / "sample").glob("*.jsonl"))
    texts = [json.loads(line)["dialogue"] for f in files for line in f.read_text().splitlines() if line.strip()]
    print(machine(), f"{len(texts)} dialogues from {[f.name for f in files]}", flush=True)
    training = []
    for method, batches in (("full", (32, 64, 128)), ("lora", (32, 64, 128))):
        for batch in batches:
            try:
                training.append(train_throughput(method, batch))
            except torch.OutOfMemoryError:
                training.append({"method": method, "batch": batch, "error": "out of memory"})
                torch.cuda.empty_cache()
            print(training[-1], flush=True)
    gen = generation(texts[:48], new_tokens=128, batch_size=48)
    print(gen, flush=True)
    rows = [("method", "batch", "samples/s", "tokens/s", "TFLOP/s", "MFU", "peak GiB")]
    rows += [(r["method"], r["batch"], f"{r['samples_per_s']:.1f}", f"{r['tokens_per_s']:.0f}",
              f"{r['achieved_tflops']:.0f}", f"{r['mfu']:.1%}" if r["mfu"] else "-", f"{r['peak_memory_gib']:.1f}")
             for r in training if "error" not in r]
    print_table(rows)
    print(f"generation: batched {gen['batched_dialogues_per_s']:.1f} vs loop {gen['loop_dialogues_per_s']:.2f} "
          f"dialogues/s = {gen['speedup']:.1f}x; identical {gen['identical_summaries']}/{gen['dialogues']}")
    save("gpu", {"model": "flan-t5-base-random", "source_tokens": SRC, "target_tokens": TGT,
                 "training": training, "generation": gen}, None)


if __name__ == "__main__":
    main()
