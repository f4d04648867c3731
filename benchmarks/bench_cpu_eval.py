"""Evaluation on a CPU: where the time goes, and what makes it faster without changing the summaries.

Same process, same dialogues, same forced summary length: the lab's loop (one dialogue at a time,
fp32) is the baseline; then `summarize` (batched, length-sorted) in fp32, with the model's weights
in bfloat16, with its linear layers dynamically quantised to int8, and with more threads than cores
where the machine has them. Each variant's summaries are compared with fp32 `summarize`'s. The
profile splits one batch's time into the encoder pass and the decoder steps.
"""

import time
import warnings
from functools import partial

import torch
from bench_generate import lab_loop
from common import generation_setup, median_time, model_and_tokenizer, print_table, save

from dialogsum_lab.generation import generation_config, summarize
from dialogsum_lab.prompts import PROMPT_TEMPLATE


def quantize_linear_int8(model):
    """Every linear layer with int8 weights, activations quantised on the fly (PyTorch's dynamic quantisation)."""
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # torch 2.13 deprecates the quantised tensor types this builds on
        warnings.filterwarnings("ignore", message="torch.quantize_per_tensor", category=UserWarning)
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def profile(model, tokenizer, texts: list[str], new_tokens: int) -> dict:
    """One batch of `texts`: seconds in the encoder pass vs in the `new_tokens` decoder steps."""
    inputs = tokenizer([PROMPT_TEMPLATE.format(dialogue=t) for t in texts], padding=True, return_tensors="pt")
    config = generation_config(model, max_new_tokens=new_tokens, min_new_tokens=new_tokens)
    with torch.inference_mode():
        start = time.perf_counter()
        model.get_encoder()(**inputs)
        encoder = time.perf_counter() - start
        start = time.perf_counter()
        model.generate(**inputs, generation_config=config)
        total = time.perf_counter() - start
    return {"batch": len(texts), "prompt_tokens_padded": inputs["input_ids"].shape[1], "encoder_s": encoder,
            "decoder_steps_s": total - encoder, "per_decoder_step_ms": 1000 * (total - encoder) / new_tokens,
            "encoder_share": encoder / total}


def main() -> None:
    args, source, texts, model, tokenizer, config = generation_setup(__doc__, n=16, new_tokens=200, batch_size=16,
                                                                     smoke_n=4, device="cpu")

    def ours(m):
        return summarize(m, tokenizer, texts, config, args.batch_size, max_source_length=4096, progress=False)

    results = {"profile_fp32": profile(model, tokenizer, texts[:args.batch_size], args.new_tokens)}
    lab_s, _ = median_time(lambda: lab_loop(model, tokenizer, texts, args.new_tokens), args.repeats)
    fp32_s, reference = median_time(lambda: ours(model), args.repeats)
    variants = {"lab loop, fp32, one at a time": (lab_s, None), f"summarize fp32, batch {args.batch_size}":
                (fp32_s, reference)}
    builds = {"bf16": lambda: model_and_tokenizer(args.model, "cpu")[0].to(torch.bfloat16),
              "int8": lambda: quantize_linear_int8(model_and_tokenizer(args.model, "cpu")[0])}
    names = {"bf16": "summarize, bf16 weights", "int8": "summarize, int8 dynamic linear layers"}
    for key, build in builds.items():
        variant = build()  # the same random weights (seeded), converted
        variants[names[key]] = median_time(partial(ours, variant), args.repeats)
        results[f"profile_{key}"] = profile(variant, tokenizer, texts[:args.batch_size], args.new_tokens)
    threads = torch.get_num_threads()
    rows_out, table = [("variant", "seconds", "vs lab", "vs fp32 batched", "summaries identical to fp32")], {}
    for name, (seconds, out) in variants.items():
        same = None if out is None else sum(a == b for a, b in zip(out, reference, strict=True))
        table[name] = {"seconds": seconds, "speedup_vs_lab": lab_s / seconds, "speedup_vs_fp32": fp32_s / seconds,
                       "identical_to_fp32": same}
        rows_out.append((name, f"{seconds:.1f}", f"{lab_s / seconds:.2f}x", f"{fp32_s / seconds:.2f}x",
                         "-" if same is None else f"{same}/{len(texts)}"))
    print_table(rows_out)
    for name in ("profile_fp32", "profile_bf16", "profile_int8"):
        prof = results[name]
        print(f"{name}: encoder {prof['encoder_s']:.2f}s ({prof['encoder_share']:.0%}), {args.new_tokens} decoder "
              f"steps {prof['decoder_steps_s']:.2f}s ({prof['per_decoder_step_ms']:.0f} ms/step), batch "
              f"{prof['batch']} x {prof['prompt_tokens_padded']} tokens")
    save("cpu_eval" + ("-smoke" if args.smoke else ""),
         {"data": source, "model": args.model, "dialogues": len(texts), "new_tokens": args.new_tokens,
          "batch_size": args.batch_size, "repeats": args.repeats, "threads": threads, "variants": table, **results},
         args.out)


if __name__ == "__main__":
    main()
