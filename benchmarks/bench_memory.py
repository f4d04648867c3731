"""Peak memory of an optimisation step: full fine-tuning vs LoRA (the lab's config) vs prompt tuning,
each also with activation checkpointing ("lora+gc": every block; "lora+gc2": every second block).

Each method runs in its own subprocess on flan-t5-base's architecture (random weights, no
download), so peaks do not mix: process peak RSS on CPU, torch.cuda.max_memory_allocated on GPU.
Beside the measurement, the arithmetic: fp32 weights, gradients and AdamW's two moments for the
trainable part. What the peak holds beyond those is activations (and allocator slack); at small
batches the three fixed terms dominate and LoRA's saving shows, at large batches activations do.
"""

import argparse
import json
import resource
import subprocess
import sys
import time

import torch
from common import parser, print_table, save

MiB = 2**20


def train_steps(variant: str, model_name: str, batch: int, src: int, tgt: int, device: str, steps: int) -> dict:
    """Runs inside the child: build, wrap, `steps` forward/backward/AdamW steps; report the peak, the last step's
    seconds and every step's loss (equal with and without checkpointing, which recomputes the same forward)."""
    from common import model_and_tokenizer
    from peft import get_peft_model

    from dialogsum_lab.config import TrainConfig
    from dialogsum_lab.methods import PEFT_CONFIGS
    from dialogsum_lab.modeling import TINY_MODEL, count_parameters, resolve_model_path

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    method, _, checkpointing = variant.partition("+")
    model, tokenizer = model_and_tokenizer(model_name, device)
    if method in PEFT_CONFIGS:
        model = get_peft_model(model, PEFT_CONFIGS[method](TrainConfig(method=method), resolve_model_path(TINY_MODEL)))
    if checkpointing:  # what Seq2SeqTrainer does for `activation_checkpointing` (the gradient_checkpointing setting)
        model.activation_checkpointing_enable(every_n_layers=int(checkpointing.removeprefix("gc") or 1))
    model.train()
    counts = count_parameters(model)
    if model.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    vocab = model.config.vocab_size if hasattr(model.config, "vocab_size") else 32128
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(3, vocab, (batch, src), generator=generator).to(model.device)
    labels = torch.randint(3, vocab, (batch, tgt), generator=generator).to(model.device)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    losses = []
    torch.manual_seed(0)  # the same dropout masks in every variant
    for _ in range(steps):
        start = time.perf_counter()
        loss = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    if model.device.type == "cuda":
        peak, kind = torch.cuda.max_memory_allocated(), "cuda_max_allocated"
    else:
        peak, kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before, "peak_rss_growth"
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    trainable_bytes = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    estimate = {"weights": params, "gradients": trainable_bytes, "adamw_state": 2 * trainable_bytes}
    return {"method": variant, "losses": losses, "last_step_seconds": seconds, "trainable": counts["trainable"],
            "total": counts["total"],
            "percent": counts["percent"], "peak_bytes": peak, "peak_kind": kind,
            "estimate_bytes": estimate, "activations_and_overhead_bytes": peak - sum(estimate.values())}


def main() -> None:
    p = parser(__doc__)
    p.set_defaults(model="flan-t5-base-random")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--source-tokens", type=int, default=512)
    p.add_argument("--target-tokens", type=int, default=128)
    p.add_argument("--methods", nargs="+", default=["full", "lora", "lora+gc", "lora+gc2", "prompt_tuning",
                                                     "prompt_tuning+gc"],
                   help="methods; +gc checkpoints every block's activations, +gc2 every second block's")
    p.add_argument("--steps", type=int, default=2, help="optimiser steps per method (the last one is timed)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(train_steps(args.child, args.model, args.batch_size, args.source_tokens,
                                  args.target_tokens, args.device, args.steps)))
        return
    if args.smoke:
        args.model, args.batch_size, args.source_tokens, args.target_tokens = "cpu-random", 1, 32, 8
        args.methods = ["full", "lora", "lora+gc"]
    rows = {}
    for method in args.methods:
        command = [sys.executable, __file__, "--child", method, "--model", args.model, "--device", args.device,
                   "--batch-size", str(args.batch_size), "--source-tokens", str(args.source_tokens),
                   "--target-tokens", str(args.target_tokens), "--steps", str(args.steps)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        rows[method] = json.loads(done.stdout.strip().splitlines()[-1])
    full = rows.get("full")
    table = [("method", "trainable", "%", "peak MiB", "vs full", "weights", "grads", "AdamW", "peak - those three",
              "step s", "losses")]
    for m, r in rows.items():
        e = r["estimate_bytes"]
        if full:
            r["peak_over_full"] = r["peak_bytes"] / full["peak_bytes"]
        table.append((m, f"{r['trainable']:,}", f"{r['percent']:.2f}", f"{r['peak_bytes'] / MiB:.0f}",
                      f"{r['peak_over_full']:.2f}x" if full else "-",
                      f"{e['weights'] / MiB:.0f}", f"{e['gradients'] / MiB:.0f}", f"{e['adamw_state'] / MiB:.0f}",
                      f"{r['activations_and_overhead_bytes'] / MiB:.0f}", f"{r['last_step_seconds']:.2f}",
                      " ".join(f"{x:.4f}" for x in r["losses"])))
    print_table(table)
    result = {"model": args.model, "batch_size": args.batch_size, "source_tokens": args.source_tokens,
              "target_tokens": args.target_tokens, "steps": args.steps, "methods": rows}
    if "full" in rows and "lora" in rows:
        result["lora_over_full_peak"] = rows["lora"]["peak_bytes"] / rows["full"]["peak_bytes"]
        print(f"LoRA / full peak memory: {result['lora_over_full_peak']:.2f}")
    save("memory" + ("-smoke" if args.smoke else ""), result, args.out)


if __name__ == "__main__":
    main()
