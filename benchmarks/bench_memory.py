"""Peak memory of one optimisation step: full fine-tuning vs LoRA (the lab's config) vs prompt tuning.

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

import torch
from common import parser, print_table, save

MiB = 2**20


def one_step(method: str, model_name: str, batch: int, src: int, tgt: int, device: str) -> dict:
    """Runs inside the child: build, wrap, one forward/backward/AdamW step, report peaks."""
    from common import model_and_tokenizer
    from peft import get_peft_model

    from dialogsum_lab.config import TrainConfig
    from dialogsum_lab.modeling import TINY_MODEL, count_parameters, resolve_model_path
    from dialogsum_lab.training import PEFT_CONFIGS

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    model, tokenizer = model_and_tokenizer(model_name, device)
    if method in PEFT_CONFIGS:
        model = get_peft_model(model, PEFT_CONFIGS[method](TrainConfig(method=method), resolve_model_path(TINY_MODEL)))
    model.train()
    counts = count_parameters(model)
    if model.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    vocab = model.config.vocab_size if hasattr(model.config, "vocab_size") else 32128
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(3, vocab, (batch, src), generator=generator).to(model.device)
    labels = torch.randint(3, vocab, (batch, tgt), generator=generator).to(model.device)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    loss = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), labels=labels).loss
    loss.backward()
    optimizer.step()
    if model.device.type == "cuda":
        torch.cuda.synchronize()
        peak, kind = torch.cuda.max_memory_allocated(), "cuda_max_allocated"
    else:
        peak, kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before, "peak_rss_growth"
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    trainable_bytes = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    estimate = {"weights": params, "gradients": trainable_bytes, "adamw_state": 2 * trainable_bytes}
    return {"method": method, "trainable": counts["trainable"], "total": counts["total"],
            "percent": counts["percent"], "peak_bytes": peak, "peak_kind": kind,
            "estimate_bytes": estimate, "activations_and_overhead_bytes": peak - sum(estimate.values())}


def main() -> None:
    p = parser(__doc__)
    p.set_defaults(model="flan-t5-base-random")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--source-tokens", type=int, default=512)
    p.add_argument("--target-tokens", type=int, default=128)
    p.add_argument("--methods", nargs="+", default=["full", "lora", "prompt_tuning"])
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(one_step(args.child, args.model, args.batch_size, args.source_tokens,
                                  args.target_tokens, args.device)))
        return
    if args.smoke:
        args.model, args.batch_size, args.source_tokens, args.target_tokens = "cpu-random", 1, 32, 8
    rows = {}
    for method in args.methods:
        command = [sys.executable, __file__, "--child", method, "--model", args.model, "--device", args.device,
                   "--batch-size", str(args.batch_size), "--source-tokens", str(args.source_tokens),
                   "--target-tokens", str(args.target_tokens)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        rows[method] = json.loads(done.stdout.strip().splitlines()[-1])
    table = [("method", "trainable", "%", "peak MiB", "weights", "grads", "AdamW", "peak - those three")]
    for m, r in rows.items():
        e = r["estimate_bytes"]
        table.append((m, f"{r['trainable']:,}", f"{r['percent']:.2f}", f"{r['peak_bytes'] / MiB:.0f}",
                      f"{e['weights'] / MiB:.0f}", f"{e['gradients'] / MiB:.0f}", f"{e['adamw_state'] / MiB:.0f}",
                      f"{r['activations_and_overhead_bytes'] / MiB:.0f}"))
    print_table(table)
    result = {"model": args.model, "batch_size": args.batch_size, "source_tokens": args.source_tokens,
              "target_tokens": args.target_tokens, "methods": rows}
    if "full" in rows and "lora" in rows:
        result["lora_over_full_peak"] = rows["lora"]["peak_bytes"] / rows["full"]["peak_bytes"]
        print(f"LoRA / full peak memory: {result['lora_over_full_peak']:.2f}")
    save("memory" + ("-smoke" if args.smoke else ""), result, args.out)


if __name__ == "__main__":
    main()
