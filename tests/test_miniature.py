"""The shipped miniature-t5: FLAN-T5's architecture at toy size, loaded like flan-t5-base, small enough to ship, and
still what `scripts/build_miniature.py` makes (the same tokenizer, the same start of training)."""

import pytest
import torch
from transformers import AutoTokenizer

from dialogsum_lab.config import MINIATURE_DIR, MINIATURE_MODEL
from dialogsum_lab.files import read_json
from dialogsum_lab.miniature import SEED, prepare, train_steps

SHIPPED = MINIATURE_DIR / "model"


def test_the_shipped_miniature_is_a_small_flan_t5_loaded_like_the_real_one():
    from dialogsum_lab.modeling import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(MINIATURE_MODEL, "float32", "cpu")
    record = read_json(SHIPPED / "build.json")
    assert model.config.feed_forward_proj == "gated-gelu" and model.config.tie_word_embeddings is False
    assert sum(p.numel() for p in model.parameters()) == record["parameters"]
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1, 2)
    assert (SHIPPED / "model.safetensors").stat().st_size < 10_000_000


@pytest.mark.slow
def test_the_build_script_still_reproduces_the_shipped_miniature():
    """Rebuilding takes about twenty minutes on 2 cores; its tokenizer and first steps take seconds and would move with
    any change to the world, the mixture, the tokenizer, the initialisation or the optimiser."""
    record = read_json(SHIPPED / "build.json")
    tokenizer, model, batches, examples = prepare()
    assert examples == record["examples"] and len(tokenizer) == record["vocab_size"]
    assert tokenizer.get_vocab() == AutoTokenizer.from_pretrained(SHIPPED).get_vocab()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        losses = train_steps(model, batches, record["steps"], stop_after=12)
    assert losses == pytest.approx(record["losses"][:12], rel=2e-3)
