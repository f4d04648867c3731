"""Evaluation on a CPU: where the time goes, and what makes it faster without changing the summaries.

Same process, same dialogues, same forced summary length: the lab's loop (one dialogue at a time,
fp32) is the baseline; then `summarize` (batched, length-sorted) as it was (the encoder reads the
padded batch, attention by SDPA) and as it is (the encoder reads each prompt alone, eager attention),
then variants of today's path: SDPA attention as before, a static cache with the decoder step
compiled (`--compile`: the first run pays the compiling, the next shows the steady state), the
model's weights in bfloat16, and its linear layers dynamically quantised to int8. Each variant's
summaries are compared with today's fp32 `summarize`. The profile splits one batch's time into the
encoder pass (padded batch vs prompt by prompt) and the decoder steps.
"""

import time
import warnings
from contextlib import nullcontext
from functools import partial
from unittest import mock

import torch
from bench_generate import lab_loop
from common import generation_setup, median_time, model_and_tokenizer, print_table, save

from dialogsum_lab import generation
from dialogsum_lab.generation import generation_config, summarize
from dialogsum_lab.prompts import PROMPT_TEMPLATE


def quantize_linear_int8(model):
    """Every linear layer with int8 weights, activations quantised on the fly (PyTorch's dynamic quantisation)."""
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # torch 2.13 deprecates the quantised tensor types this builds on
        warnings.filterwarnings("ignore", message="torch.quantize_per_tensor", category=UserWarning)
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def sdpa_attention():
    """`summarize` as it was before it attended eagerly on a CPU: the model's own SDPA."""
    return mock.patch.object(generation, "_eager_attention", lambda model: nullcontext())


def padded_encoder():
    """`summarize` as it was before the encoder read each prompt alone: one encoder pass over the padded batch."""
    return mock.patch.object(generation, "_encoder_without_padding", lambda model: nullcontext())


def profile(model, tokenizer, texts: list[str], new_tokens: int) -> dict:
    """One batch of `texts`: seconds in the encoder (padded batch, and prompt by prompt) and in the decoder steps."""
    inputs = tokenizer([PROMPT_TEMPLATE.format(dialogue=t) for t in texts], padding=True, return_tensors="pt")
    config = generation_config(model, max_new_tokens=new_tokens, min_new_tokens=new_tokens)
    with torch.inference_mode():
        start = time.perf_counter()
        model.get_encoder()(**inputs)
        padded = time.perf_counter() - start
        with generation._encoder_without_padding(model), generation._eager_attention(model):
            start = time.perf_counter()
            model.get_encoder()(**inputs)
            alone = time.perf_counter() - start
            start = time.perf_counter()
            model.generate(**inputs, generation_config=config)
            total = time.perf_counter() - start
    real = int(inputs["attention_mask"].sum())
    return {"batch": len(texts), "prompt_tokens_padded": inputs["input_ids"].shape[1], "real_token_share":
            real / inputs["attention_mask"].numel(), "encoder_padded_batch_s": padded, "encoder_prompt_by_prompt_s":
            alone, "decoder_steps_s": total - alone, "per_decoder_step_ms": 1000 * (total - alone) / new_tokens,
            "encoder_share": alone / total}


def main() -> None:
    args, source, texts, model, tokenizer, config = generation_setup(__doc__, n=16, new_tokens=200, batch_size=16,
                                                                     smoke_n=4, device="cpu")

    def ours(m, generation=config):
        return summarize(m, tokenizer, texts, generation, args.batch_size, max_source_length=4096, progress=False)

    def sdpa(m):
        with sdpa_attention():
            return ours(m)

    def before(m):
        with padded_encoder(), sdpa_attention():
            return ours(m)

    compiled = partial(ours, generation=generation_config(model, compile=True, max_new_tokens=args.new_tokens,
                                                          min_new_tokens=args.new_tokens))
    torch._inductor.config.force_disable_caches = True  # the first compiled run pays all its compiling, as a user's
    results = {"profile_fp32": profile(model, tokenizer, texts[:args.batch_size], args.new_tokens)}
    lab_s, _ = median_time(lambda: lab_loop(model, tokenizer, texts, args.new_tokens), args.repeats)
    fp32_s, reference = median_time(lambda: ours(model), args.repeats)
    variants = {"lab_loop": ("lab loop, fp32, one at a time", lab_s, None),
                "padded_encoder": (f"summarize fp32, batch {args.batch_size}, padded encoder batch, SDPA (before)",
                                   *median_time(partial(before, model), args.repeats)),
                "default": (f"summarize fp32, batch {args.batch_size}, encoder prompt by prompt, eager (now)", fp32_s,
                            reference),
                "sdpa_attention": ("  with SDPA attention (the default before)",
                                   *median_time(partial(sdpa, model), args.repeats)),
                "compiled_first": ("  + compiled decoder, first run (compiling included)",
                                   *median_time(partial(compiled, model), 1)),
                "compiled": ("  + compiled decoder, next run", *median_time(partial(compiled, model), args.repeats))}
    builds = {"bf16": ("  + bf16 weights", lambda: model_and_tokenizer(args.model, "cpu")[0].to(torch.bfloat16)),
              "int8": ("  + int8 dynamic linear layers",
                       lambda: quantize_linear_int8(model_and_tokenizer(args.model, "cpu")[0]))}
    for key, (name, build) in builds.items():
        variant = build()  # the same random weights (seeded), converted
        variants[key] = (name, *median_time(partial(ours, variant), args.repeats))
        results[f"profile_{key}"] = profile(variant, tokenizer, texts[:args.batch_size], args.new_tokens)
    rows_out, table = [("variant", "seconds", "vs lab", "vs now", "summaries identical to now")], {}
    for key, (name, seconds, out) in variants.items():
        same = None if out is None else sum(a == b for a, b in zip(out, reference, strict=True))
        table[key] = {"name": name, "seconds": seconds, "speedup_vs_lab": lab_s / seconds,
                      "speedup_vs_now": fp32_s / seconds, "identical_to_now": same}
        rows_out.append((name, f"{seconds:.1f}", f"{lab_s / seconds:.2f}x", f"{fp32_s / seconds:.2f}x",
                         "-" if same is None else f"{same}/{len(texts)}"))
    print_table(rows_out)
    for name in ("profile_fp32", "profile_bf16", "profile_int8"):
        prof = results[name]
        print(f"{name}: encoder padded batch {prof['encoder_padded_batch_s']:.2f}s vs prompt by prompt "
              f"{prof['encoder_prompt_by_prompt_s']:.2f}s ({prof['encoder_share']:.0%} of generate), "
              f"{args.new_tokens} decoder steps {prof['decoder_steps_s']:.2f}s ({prof['per_decoder_step_ms']:.0f} "
              f"ms/step), batch {prof['batch']} x {prof['prompt_tokens_padded']} tokens, "
              f"{prof['real_token_share']:.0%} real")
    save("cpu_eval" + ("-smoke" if args.smoke else ""),
         {"data": source, "model": args.model, "dialogues": len(texts), "new_tokens": args.new_tokens,
          "batch_size": args.batch_size, "repeats": args.repeats, "threads": torch.get_num_threads(),
          "variants": table, **results}, args.out)


if __name__ == "__main__":
    main()
