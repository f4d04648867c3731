"""Evaluation throughput: the lab's one-dialogue-at-a-time loop vs dialogsum_lab's batched generator.

Both are greedy and forced to the same output length (min_new_tokens = max_new_tokens), on the
same dialogues, so the work is identical; the summaries must match.
"""

import torch
from common import generation_setup, median_time, print_table, save
from transformers import GenerationConfig

from dialogsum_lab.generation import summarize
from dialogsum_lab.prompts import PROMPT_TEMPLATE


def lab_loop(model, tokenizer, texts: list[str], new_tokens: int) -> list[str]:
    """The lab's section 2/3 loop: one prompt at a time, input_ids only, max_new_tokens=200."""
    config = GenerationConfig(max_new_tokens=new_tokens, min_new_tokens=new_tokens, num_beams=1, do_sample=False,
                              decoder_start_token_id=model.config.decoder_start_token_id,
                              eos_token_id=model.config.eos_token_id, pad_token_id=model.config.pad_token_id)
    out = []
    with torch.no_grad():
        for text in texts:
            input_ids = tokenizer(PROMPT_TEMPLATE.format(dialogue=text), return_tensors="pt").input_ids
            ids = model.generate(input_ids=input_ids.to(model.device), generation_config=config)
            out.append(tokenizer.decode(ids[0], skip_special_tokens=True).strip())
    return out


def main() -> None:
    args, source, texts, model, tokenizer, config = generation_setup(__doc__, n=120, new_tokens=64, batch_size=32,
                                                                     smoke_n=6)

    lab_s, lab_out = median_time(lambda: lab_loop(model, tokenizer, texts, args.new_tokens), args.repeats)
    # The lab truncates nothing, so neither do we here: both read exactly the same tokens.
    ours_s, ours_out = median_time(lambda: summarize(model, tokenizer, texts, config, args.batch_size,
                                                     max_source_length=4096, progress=False), args.repeats)
    same = sum(a == b for a, b in zip(lab_out, ours_out, strict=True))
    lengths = [len(ids) for ids in tokenizer([PROMPT_TEMPLATE.format(dialogue=t) for t in texts])["input_ids"]]
    result = {"data": source, "model": args.model, "device": str(model.device), "dialogues": len(texts),
              "new_tokens": args.new_tokens, "batch_size": args.batch_size, "repeats": args.repeats,
              "prompt_tokens_mean": sum(lengths) / len(lengths), "prompt_tokens_max": max(lengths),
              "lab_seconds": lab_s, "ours_seconds": ours_s,
              "lab_dialogues_per_s": len(texts) / lab_s, "ours_dialogues_per_s": len(texts) / ours_s,
              "speedup": lab_s / ours_s, "identical_summaries": same}
    print_table([("", "seconds", "dialogues/s"),
                 ("lab loop (1 at a time)", f"{lab_s:.2f}", f"{len(texts) / lab_s:.2f}"),
                 (f"batched, sorted (bs {args.batch_size})", f"{ours_s:.2f}", f"{len(texts) / ours_s:.2f}"),
                 ("speedup", f"{lab_s / ours_s:.1f}x", f"identical summaries: {same}/{len(texts)}")])
    save("generate" + ("-smoke" if args.smoke else ""), result, args.out)


if __name__ == "__main__":
    main()
