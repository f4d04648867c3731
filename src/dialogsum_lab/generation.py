"""Batched, length-sorted summary generation.

The lab generates one dialogue at a time. Sorting prompts by length and
batching them keeps padding small, so a batch costs about as much as its
longest member; results come back in the caller's order. On a CPU the
encoder then reads each prompt of a batch alone: there its cost is
arithmetic, and padding a batch of real dialogues to its longest prompt
is wasted work, while the decoder steps still share the batch; and T5
attends with plain matmuls rather than SDPA, faster there for the same
summaries (figures: benchmarks/README.md, section 8). `compile=True`
decodes with a static cache and a compiled decoder step, for the same
summaries: meant for GPUs, where a decoder step of a small model is bound by
kernel launches (on a small CPU it does not pay: section 8 again).
"""

import copy
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from functools import partial

import torch
from tqdm.auto import tqdm
from tqdm.std import tqdm as text_tqdm
from transformers import CompileConfig, GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase
from transformers.modeling_outputs import BaseModelOutput

from dialogsum_lab.config import DEFAULT_MAX_NEW_TOKENS, DEFAULT_MAX_SOURCE_LENGTH
from dialogsum_lab.errors import UserError
from dialogsum_lab.prompts import PROMPT_TEMPLATE

log = logging.getLogger(__name__)


@dataclass
class Summaries:
    """Generated summaries in input order, with the token counts that say how far to trust them."""

    texts: list[str]
    prompt_tokens: list[int]  # before truncation
    new_tokens: list[int]  # generated before the end-of-sequence token
    finished: list[bool]  # False: cut off at max_new_tokens
    max_source_length: int

    @property
    def truncated_prompts(self) -> int:
        return sum(n > self.max_source_length for n in self.prompt_tokens)


def generation_config(model: PreTrainedModel, compile: bool = False, **overrides) -> GenerationConfig:
    """The model's own generation config (start/eos/pad ids), greedy, with `overrides` applied.

    `compile`: a static cache, whose fixed shapes let transformers compile the decoder step, on a CPU too
    (where it does not by default). CUDA keeps transformers' CUDA-graph mode; a CPU has no graphs to replay.
    """
    config = copy.deepcopy(model.generation_config)
    settings = {"max_new_tokens": DEFAULT_MAX_NEW_TOKENS, "do_sample": False, "num_beams": 1, "max_length": None}
    if compile:
        compiled = CompileConfig() if model.device.type == "cuda" else CompileConfig(mode="default")
        compiled._compile_all_devices = True  # transformers' own switch for devices it does not compile on
        settings |= {"cache_implementation": "static", "compile_config": compiled}
    config.update(**(settings | overrides))
    return config


def decoding(max_new_tokens: int, num_beams: int = 1, sample: bool = False, temperature: float = 1.0,
             top_p: float = 1.0) -> dict:
    """`generation_config` overrides for the settings a person turns by hand (the review app's Try tab, the
    notebook playground): temperature and top-p only when sampling, where they mean something."""
    settings = {"max_new_tokens": int(max_new_tokens), "num_beams": int(num_beams), "do_sample": bool(sample)}
    return settings | ({"temperature": float(temperature), "top_p": float(top_p)} if sample else {})


def summarize(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, dialogues: Sequence[str],
              config: GenerationConfig | None = None, batch_size: int = 16,
              prompt_template: str = PROMPT_TEMPLATE, max_source_length: int = DEFAULT_MAX_SOURCE_LENGTH,
              progress: bool = True) -> list[str]:
    """One summary per dialogue, in input order (`generate_summaries` without the counts)."""
    return generate_summaries(model, tokenizer, dialogues, config, batch_size, prompt_template, max_source_length,
                              progress).texts


def generate_summaries(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, dialogues: Sequence[str],
                       config: GenerationConfig | None = None, batch_size: int = 16,
                       prompt_template: str = PROMPT_TEMPLATE, max_source_length: int = DEFAULT_MAX_SOURCE_LENGTH,
                       progress: bool = True) -> Summaries:
    """One summary per dialogue, in input order, with prompt and summary lengths in tokens.

    `prompt_template` wraps each dialogue (`"{dialogue}"` passes prompts through
    unchanged, e.g. for few-shot prompts built by the caller). Prompts longer
    than `max_source_length` are cut from the right, with one warning.
    """
    prompts = [prompt_template.format(dialogue=d) for d in dialogues]
    config = config or generation_config(model)
    encoded, lengths = _encode(tokenizer, prompts, max_source_length)
    # Longest first: a batch that does not fit in memory fails at once, not at the end.
    order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
    multiple = 8 if model.device.type == "cuda" else None  # tensor-core friendly shapes on GPU
    texts, new_tokens, finished = [""] * len(prompts), [0] * len(prompts), [True] * len(prompts)
    bar_kind = partial(text_tqdm, file=sys.stdout, mininterval=5, ncols=80) if _in_notebook() else tqdm
    on_cpu = model.device.type == "cpu"
    unpadded = _encoder_without_padding(model) if on_cpu else nullcontext()
    eager = _eager_attention(model) if on_cpu else nullcontext()
    with torch.inference_mode(), unpadded, eager, bar_kind(total=len(prompts), desc="Generating", unit="dialogue",
                                          disable=not progress) as bar:
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            inputs = tokenizer.pad({"input_ids": [encoded[i] for i in batch]}, padding=True,
                                   pad_to_multiple_of=multiple, return_tensors="pt").to(model.device)
            generated = _generate(model, inputs, config)
            for i, text in zip(batch, tokenizer.batch_decode(generated, skip_special_tokens=True), strict=True):
                texts[i] = text.strip()
            for i, (count, done) in zip(batch, _count_new_tokens(generated, config), strict=True):
                new_tokens[i], finished[i] = count, done
            bar.update(len(batch))
    return Summaries(texts, lengths, new_tokens, finished, max_source_length)


def _in_notebook() -> bool:
    """Inside a Jupyter kernel a plain text bar on stdout, which a saved notebook shows in its final state
    (tqdm's notebook widgets are saved frozen at 0%)."""
    return "ipykernel" in sys.modules


@contextmanager
def _encoder_without_padding(model: PreTrainedModel) -> Iterator[None]:
    """While open, the encoder runs each right-padded row alone, cut to its length, and returns the padded shape.

    Wrapping the encoder module (not passing `encoder_outputs` to `generate`) keeps whatever a PEFT model
    feeds it, such as prompt tuning's virtual tokens. Padded positions come back as zeros, which the
    attention mask hides from the decoder exactly as before.
    """
    encoder = model.get_encoder()
    own = vars(encoder).get("forward")  # e.g. an accelerate hook; restored as it was
    batched = encoder.forward

    def forward(input_ids=None, attention_mask=None, inputs_embeds=None, **kwargs):
        mask = None if attention_mask is None else attention_mask.long()
        lengths = None if mask is None else mask.sum(1)
        right_padded = lengths is not None and bool((mask.cumprod(1).sum(1) == lengths).all())
        if not right_padded or kwargs.get("output_attentions") or kwargs.get("output_hidden_states"):
            return batched(input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds, **kwargs)
        states = None
        for row, n in enumerate(lengths.tolist()):
            one = batched(input_ids=None if input_ids is None else input_ids[row:row + 1, :n],
                          attention_mask=attention_mask[row:row + 1, :n],
                          inputs_embeds=None if inputs_embeds is None else inputs_embeds[row:row + 1, :n],
                          **kwargs).last_hidden_state
            if states is None:
                states = one.new_zeros(attention_mask.shape + one.shape[-1:])
            states[row, :n] = one[0]
        return BaseModelOutput(last_hidden_state=states)

    encoder.forward = forward
    try:
        yield
    finally:
        if own is None:
            del encoder.forward
        else:
            encoder.forward = own


@contextmanager
def _eager_attention(model: PreTrainedModel) -> Iterator[None]:
    """While open, a model that attends with SDPA attends with transformers' eager matmuls instead.

    On a CPU that was faster in every alternated pair measured and changed no summary (benchmarks/README.md,
    section 8); any other implementation is left alone.
    """
    own = model.config._attn_implementation
    if own != "sdpa":
        yield
        return
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(own)


def _generate(model: PreTrainedModel, inputs, config: GenerationConfig) -> torch.Tensor:
    """`model.generate`, with a compiler failure (on a CPU: no C++ compiler) said in one line."""
    try:
        return model.generate(**inputs, generation_config=config)
    except torch._dynamo.exc.BackendCompilerFailed as err:
        reason = str(err).strip().splitlines()[0]
        raise UserError(f"compiling the decoder failed ({reason}). On a CPU, torch.compile needs a C++ compiler "
                        "(e.g. `apt install g++`); or generate without compiling (drop --compile).") from None


def _encode(tokenizer: PreTrainedTokenizerBase, prompts: list[str], max_length: int) -> tuple[list, list[int]]:
    """Token ids cut to `max_length`, and every prompt's length before the cut (warned about once)."""
    encoded = tokenizer(prompts, verbose=False)["input_ids"]
    lengths = [len(ids) for ids in encoded]
    long = [i for i, n in enumerate(lengths) if n > max_length]
    if long:  # the tokenizer's own truncation, so special tokens stay where it puts them
        cut = tokenizer([prompts[i] for i in long], truncation=True, max_length=max_length)["input_ids"]
        for i, ids in zip(long, cut, strict=True):
            encoded[i] = ids
        log.warning("%d of %d prompts are longer than max_source_length=%d tokens (longest %d) and lose their end: "
                    "the last turns and the prompt's closing cue. Raise --max-source-length to keep them whole.",
                    len(long), len(prompts), max_length, max(lengths))
    return encoded, lengths


def _count_new_tokens(generated: torch.Tensor, config: GenerationConfig) -> list[tuple[int, bool]]:
    """(tokens before end-of-sequence, whether it ended) per generated row, from the ids themselves."""
    eos = config.eos_token_id
    eos = torch.tensor(eos if isinstance(eos, list) else [eos], device=generated.device)
    new = generated[:, 1:]  # the first position is the decoder start token
    ended = torch.isin(new, eos)
    first_end = torch.where(ended.any(1), ended.int().argmax(1), new.shape[1])
    return [(int(n), bool(e)) for n, e in zip(first_end.tolist(), ended.any(1).tolist(), strict=True)]
