"""Randomly initialised FLAN-T5s: flan-t5-base's shape for counting and benchmarking without a download, and
`tiny-random-t5`, the toy model of the plumbing tests.

`tiny-random-t5` has FLAN-T5's architecture (gated-GELU feed-forward, untied input/output embeddings, a
SentencePiece-style Unigram tokenizer with T5's special tokens) at toy size. It is built from the shipped sample
data on first use and saved with `save_pretrained`, so it goes through the very same `from_pretrained(path)`
code as `google/flan-t5-base`. Its scores mean nothing: it exists to run every step offline in seconds.
"""

import json
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from dialogsum_lab.config import SAMPLE_DIR, TINY_MODEL
from dialogsum_lab.prompts import PROMPT_TEMPLATE, TOPIC_TEMPLATE
from dialogsum_lab.runs import share_files

TINY_MODEL_NOTE = ("tiny-random-t5 is a randomly initialised toy model: its summaries are gibberish and its "
                   "ROUGE scores are meaningless. It only proves the pipeline runs; use google/flan-t5-base "
                   "for real numbers.")
# google/flan-t5-base's architecture, for counting and benchmarking without a download.
FLAN_T5_BASE_SHAPE = {"vocab_size": 32128, "d_model": 768, "d_kv": 64, "d_ff": 2048, "num_layers": 12,
                      "num_heads": 12}


def random_flan_t5(device: str | torch.device = "cpu", **shape):
    """A randomly initialised T5 v1.1 / FLAN-T5 (gated-GELU, untied output matrix) of the given shape.

    `device="meta"` builds it without memory, enough to count parameters.
    """
    from transformers import T5Config, T5ForConditionalGeneration

    shape = FLAN_T5_BASE_SHAPE | shape
    config = T5Config(**shape, num_decoder_layers=shape["num_layers"], feed_forward_proj="gated-gelu",
                      tie_word_embeddings=False, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    with torch.device(device):
        model = T5ForConditionalGeneration(config)
        # transformers 5 ties lm_head to the input embedding at construction; FLAN-T5 keeps its own output
        # matrix (same init as T5's), saved separately and left untied on load, as for the real checkpoint.
        model.lm_head.weight = torch.nn.Parameter(torch.randn_like(model.lm_head.weight))
    model.accepts_loss_kwargs = False
    return untied_in_config(model)


def build_tiny_t5(out_dir: str | Path, d_model: int = 64, num_layers: int = 2, num_heads: int = 4,
                  vocab_size: int = 1000, seed: int = 0) -> Path:
    """Build, save and return the offline stand-in for FLAN-T5 (deterministic for a given seed).

    Written to a temporary folder first and moved into place, so an interrupted
    build never leaves a half-saved model behind, and processes building it at
    the same time all end up with one complete copy.
    """
    out_dir = Path(out_dir)
    tokenizer = _train_tiny_tokenizer(vocab_size)
    # Its own random stream: a run seeds, then loads its model, and must draw the same numbers afterwards
    # (LoRA's initial weights, dropout) whether or not this first use had to build it.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = random_flan_t5(vocab_size=len(tokenizer), d_model=d_model, d_kv=d_model // num_heads,
                               d_ff=2 * d_model, num_layers=num_layers, num_heads=num_heads,
                               relative_attention_num_buckets=32)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    staging.chmod(0o755)
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    share_files(staging)
    (staging / "README.md").write_text(f"# {TINY_MODEL}\n\n{TINY_MODEL_NOTE}\n")
    if out_dir.exists() and not (out_dir / "config.json").exists():
        shutil.rmtree(out_dir)  # a broken earlier build
    try:
        staging.rename(out_dir)
    except OSError:  # another process (say, another torchrun rank) finished the same build first: keep it
        shutil.rmtree(staging)
    return out_dir


def _train_tiny_tokenizer(vocab_size: int) -> PreTrainedTokenizerBase:
    """A Unigram (SentencePiece-style) tokenizer trained on the sample data, with T5's special ids: quick and
    good enough for a model whose words mean nothing (miniature.train_tokenizer makes the one that matters)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import T5Tokenizer

    texts = [PROMPT_TEMPLATE, TOPIC_TEMPLATE]
    for file in sorted(SAMPLE_DIR.glob("*.jsonl")):
        for line in file.read_text().splitlines():
            texts += [str(v) for v in json.loads(line).values()]
    sp = Tokenizer(models.Unigram())
    sp.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=["<pad>", "</s>", "<unk>"],
                                      unk_token="<unk>", shrinking_factor=0.75)
    sp.train_from_iterator(texts, trainer=trainer)
    # The trainer is not reproducible to the last bit (parallel sums; rare characters come in hash order with
    # made-up scores): round, give those characters one score and sort; the special tokens stay at 0, 1, 2.
    vocab = [(piece, round(score, 6)) for piece, score in json.loads(sp.to_str())["model"]["vocab"]]
    floor = min(score for piece, score in vocab[3:] if len(piece) > 1)
    pieces = [(piece, score if score >= floor else floor - 1.0) for piece, score in vocab[3:]]
    vocab = vocab[:3] + sorted(pieces, key=lambda item: (-item[1], item[0]))
    return T5Tokenizer(vocab=vocab, extra_ids=100, model_max_length=512)


def untied_in_config(model: PreTrainedModel) -> PreTrainedModel:
    """Make the config say what the weights are: transformers 5's T5Config always claims tied embeddings,
    even for FLAN-T5 / T5 v1.1 whose output matrix is its own (peft's merge then warns that they "are no
    longer tied"). Generation is unaffected: T5 reads `scale_decoder_outputs` for that."""
    head, embeddings = model.get_output_embeddings(), model.get_input_embeddings()
    if head is not None and head.weight.data_ptr() != embeddings.weight.data_ptr():
        model.config.tie_word_embeddings = False
    return model
