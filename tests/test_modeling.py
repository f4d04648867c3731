import hashlib
from pathlib import Path

import pytest
import torch

from dialogsum_lab.devices import torch_dtype
from dialogsum_lab.errors import UserError
from dialogsum_lab.modeling import count_parameters, describe_parameters, load_model_and_tokenizer
from dialogsum_lab.random_models import build_tiny_t5


def test_tiny_model_has_flan_t5_architecture(tiny):
    model, tokenizer = tiny
    assert model.config.model_type == "t5"
    assert model.config.feed_forward_proj == "gated-gelu"
    assert model.config.scale_decoder_outputs is False  # T5 v1.1: untied head, no d_model**-0.5 rescaling
    assert model.lm_head.weight.data_ptr() != model.shared.weight.data_ptr()
    assert not torch.equal(model.lm_head.weight, model.shared.weight)
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1, 2)
    assert "<extra_id_0>" in tokenizer.get_vocab()
    assert model.accepts_loss_kwargs is False


def test_tiny_model_is_deterministic_and_saved_as_safetensors(tmp_path):
    digests = []
    for name in ("a", "b"):
        path = build_tiny_t5(tmp_path / name)
        assert (path / "model.safetensors").exists() and not (path / "pytorch_model.bin").exists()
        digests.append([hashlib.sha256((path / f).read_bytes()).hexdigest()
                        for f in ("model.safetensors", "tokenizer.json")])
    assert digests[0] == digests[1]


def test_building_the_tiny_model_leaves_the_callers_random_numbers_alone(tmp_path):
    """A run seeds and then loads its model; building the tiny model on first use must not shift what it draws."""
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    build_tiny_t5(tmp_path / "tiny")
    assert torch.equal(torch.rand(3), expected)


def test_fp16_is_refused_for_t5_with_the_reason():
    with pytest.raises(UserError, match="float16 is not safe for T5.*bfloat16"):
        torch_dtype("float16", "cpu")
    assert torch_dtype("auto", "cpu") == torch.float32


def test_unknown_model_gives_one_clear_error(tmp_path):
    with pytest.raises(UserError, match="model folder .*no-such-model does not exist. Check the path"):
        load_model_and_tokenizer(str(tmp_path / "no-such-model"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"model folder .*empty lacks config.json, weights .*a tokenizer"):
        load_model_and_tokenizer(str(tmp_path / "empty"))


def test_pickled_weights_load_only_when_the_user_opts_in(tiny, tmp_path, monkeypatch):
    model, tokenizer = tiny
    folder = tmp_path / "pickled"
    model.config.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(UserError, match="only pickled weights .*pytorch_model.bin.*DIALOGSUM_LAB_ALLOW_PICKLE=1"):
        load_model_and_tokenizer(str(folder), "float32", "cpu")
    monkeypatch.setenv("DIALOGSUM_LAB_ALLOW_PICKLE", "1")
    loaded, _ = load_model_and_tokenizer(str(folder), "float32", "cpu")
    assert torch.equal(loaded.lm_head.weight, model.lm_head.weight)
    # Even when allowed, torch's weights-only loader refuses arbitrary objects: one clear line, not a traceback.
    torch.save({"weights": model.state_dict(), "trainer": Path("an arbitrary object")}, folder / "pytorch_model.bin")
    with pytest.raises(UserError, match="safe loader refuses its pickled weights"):
        load_model_and_tokenizer(str(folder), "float32", "cpu")


def test_parameter_report(tiny):
    model, _ = tiny
    counts = count_parameters(model)
    assert counts["trainable"] == counts["total"] == sum(p.numel() for p in model.parameters())
    assert "percentage of trainable model parameters: 100.00%" in describe_parameters(model)


def test_hub_model_offline_is_a_clear_error():
    with pytest.raises(UserError, match="could not load model 'google/flan-t5-base'.*tiny-random-t5"):
        load_model_and_tokenizer("google/flan-t5-base")
