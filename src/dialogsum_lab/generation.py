"""Batched, length-sorted summary generation.

The lab generates one dialogue at a time. Sorting prompts by length and
batching them keeps padding small, so a batch costs about as much as its
longest member; results come back in the caller's order.
"""

import copy
from collections.abc import Sequence

import torch
from tqdm.auto import tqdm
from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

from dialogsum_lab.prompts import PROMPT_TEMPLATE

# Greedy with room for a full summary, as in the lab; never transformers' silent 20-token default.
DEFAULT_MAX_NEW_TOKENS = 200


def generation_config(model: PreTrainedModel, **overrides) -> GenerationConfig:
    """The model's own generation config (start/eos/pad ids), greedy, with `overrides` applied."""
    config = copy.deepcopy(model.generation_config)
    settings = {"max_new_tokens": DEFAULT_MAX_NEW_TOKENS, "do_sample": False, "num_beams": 1, "max_length": None}
    config.update(**(settings | overrides))
    return config


def summarize(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, dialogues: Sequence[str],
              config: GenerationConfig | None = None, batch_size: int = 16,
              prompt_template: str = PROMPT_TEMPLATE, max_source_length: int = 512,
              progress: bool = True) -> list[str]:
    """One summary per dialogue, in input order.

    `prompt_template` wraps each dialogue (`"{dialogue}"` passes prompts through
    unchanged, e.g. for few-shot prompts built by the caller).
    """
    prompts = [prompt_template.format(dialogue=d) for d in dialogues]
    config = config or generation_config(model)
    # Tokenise once; batches below are only padded.
    encoded = tokenizer(prompts, truncation=True, max_length=max_source_length)["input_ids"]
    # Longest first: a batch that does not fit in memory fails at once, not at the end.
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
    multiple = 8 if model.device.type == "cuda" else None  # tensor-core friendly shapes on GPU
    outputs: list[str] = [""] * len(prompts)
    with torch.inference_mode(), tqdm(total=len(prompts), desc="Generating", unit="dialogue",
                                      disable=not progress) as bar:
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            inputs = tokenizer.pad({"input_ids": [encoded[i] for i in batch]}, padding=True,
                                   pad_to_multiple_of=multiple, return_tensors="pt").to(model.device)
            generated = model.generate(**inputs, generation_config=config)
            for i, text in zip(batch, tokenizer.batch_decode(generated, skip_special_tokens=True), strict=True):
                outputs[i] = text.strip()
            bar.update(len(batch))
    return outputs
