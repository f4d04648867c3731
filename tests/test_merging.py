"""Merging an adapter into its base: the same outputs, and a wrong base refused naming both."""

import shutil
import subprocess
import sys

import pytest

from dialogsum_lab.errors import UserError
from dialogsum_lab.experiments import ensure_run
from dialogsum_lab.merging import merge_adapter
from dialogsum_lab.modeling import load_model_and_tokenizer, load_trained
from dialogsum_lab.random_models import TINY_MODEL, build_tiny_t5


def test_merged_lora_equals_unmerged(lora_run, tmp_path):
    check = merge_adapter(str(lora_run), tmp_path / "merged", device="cpu")
    assert check["max_abs_logit_difference"] < 1e-4 and check["summaries_identical"]
    merged, _, info = load_trained(str(tmp_path / "merged"), device="cpu")
    assert info["adapter"] is None and not hasattr(merged, "peft_config")


def test_adapter_on_a_different_base_is_refused_naming_both(lora_run, tmp_path):
    same_widths = build_tiny_t5(tmp_path / "vocab", vocab_size=700)  # peft alone would load the adapter silently
    with pytest.raises(UserError, match=r"trained on a different base .*vocab_size \d+ vs \d+ \(trained vs given\)"
                                        r".*--base"):
        load_trained(str(lora_run), base=str(same_widths), device="cpu")
    with pytest.raises(UserError, match="vocab_size"):
        merge_adapter(str(lora_run), tmp_path / "merged", base=str(same_widths), device="cpu")
    # An adapter made elsewhere has no record of its base: peft's own shape check still answers clearly.

    foreign = shutil.copytree(lora_run / "model", tmp_path / "foreign")
    (foreign / "base_model.json").unlink()
    narrow = build_tiny_t5(tmp_path / "narrow", d_model=32)
    with pytest.raises(UserError, match="does not fit base model .*--base"):
        load_trained(str(foreign), base=str(narrow), device="cpu")


def test_loaded_flan_t5_configs_say_their_embeddings_are_untied(tmp_path):
    """transformers 5 forces tie_word_embeddings=True in T5Config; the loader makes it tell the truth, so merging
    a LoRA adapter does not warn that the embeddings 'are no longer tied'."""
    model, _ = load_model_and_tokenizer(TINY_MODEL, dtype="float32", device="cpu")
    assert model.config.tie_word_embeddings is False
    run = ensure_run("smoke", "lora", tmp_path / "lora", overrides={"max_steps": 2, "eval_strategy": "no",
                                                                    "save_strategy": "no", "device": "cpu"})
    # Every user and future warning is an error here, outside pytest's own filters: the merge (peft wrapping,
    # loading and merging an adapter on transformers 5) must raise none.
    merge = f"from dialogsum_lab.merging import merge_adapter; merge_adapter({str(run)!r}, {str(tmp_path / 'm')!r})"
    done = subprocess.run([sys.executable, "-W", "error::UserWarning", "-W", "error::FutureWarning", "-c", merge],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "m" / "merge_check.json").is_file()

