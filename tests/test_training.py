"""Training each method: the loss falls, generation changes, peft's counts, the base stays untouched, adapters
reload, activation checkpointing changes no result."""

import json
import math

import pytest
import torch
from helpers import LEARNING_RATES, quick

from dialogsum_lab.config import TrainConfig
from dialogsum_lab.generation import generation_config, summarize
from dialogsum_lab.methods import PEFT_CONFIGS, build_model
from dialogsum_lab.modeling import count_parameters, load_model_and_tokenizer, load_trained
from dialogsum_lab.random_models import random_flan_t5
from dialogsum_lab.trainer_setup import make_trainer
from dialogsum_lab.training import train


def first_step_scores(model, tokenizer) -> torch.Tensor:
    """The scores `generate()` gives the first summary token: what any adapter must change."""
    inputs = tokenizer(["Summarize: #Person1#: Can you lend me a pen?\n#Person2#: Sure."], return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**inputs, generation_config=generation_config(model, max_new_tokens=1),
                             output_scores=True, return_dict_in_generate=True)
    return out.scores[0]


@pytest.mark.parametrize("method", list(LEARNING_RATES))
def test_each_method_trains_and_changes_what_generate_produces(method, tmp_path):
    run = train(quick(method), tmp_path / method)
    state = json.loads((run / "trainer_state.json").read_text())
    losses = [h["loss"] for h in state["log_history"] if "loss" in h]
    assert len(losses) == 8
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3
    metrics = json.loads((run / "train_metrics.json").read_text())
    assert metrics["global_step"] == 8 and metrics["peak_memory_mb"] > 0
    assert (run / "loss_curve.png").stat().st_size > 1000
    weights = "model.safetensors" if method == "full" else "adapter_model.safetensors"
    assert (run / "model" / weights).exists() and (run / "config.yaml").exists()
    # Loaded as evaluation loads it, the trained model must generate differently from its base.
    trained, tokenizer, _ = load_trained(str(run), device="cpu")
    base, _ = load_model_and_tokenizer("tiny-random-t5", "float32", "cpu")
    assert not torch.allclose(first_step_scores(trained, tokenizer), first_step_scores(base, tokenizer), atol=1e-4)


def test_prefix_tuning_generation_equals_greedy_decoding_through_forward(tmp_path):
    """generate() with its cache must give what step-by-step forward passes (the training path) give."""
    model, tokenizer = build_model(quick("prefix_tuning"))
    model.eval()
    inputs = tokenizer(["Summarize: #Person1#: Shall we meet at noon?\n#Person2#: Yes.",
                        "Summarize: #Person1#: Is the library open today until late?\n#Person2#: Until nine."],
                       return_tensors="pt", padding=True)
    sequence = torch.zeros((2, 1), dtype=torch.long)
    with torch.inference_mode():
        for _ in range(6):
            logits = model(**inputs, decoder_input_ids=sequence).logits[:, -1]
            sequence = torch.cat([sequence, logits.argmax(-1, keepdim=True)], dim=1)
        generated = model.generate(**inputs, generation_config=generation_config(model, max_new_tokens=6))
        with model.disable_adapter():
            base = model.generate(**inputs, generation_config=generation_config(model, max_new_tokens=6))
    assert torch.equal(generated, sequence)
    assert not torch.equal(generated, base)


def test_trainable_counts_are_peft_own(tmp_path):
    config = quick("lora")
    model, _ = build_model(config)
    counts = count_parameters(model)
    assert counts["trainable"] == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert (counts["trainable"], counts["total"]) == model.get_nb_trainable_parameters()


def test_lab_lora_on_flan_t5_base_shape_trains_3538944_parameters():
    from peft import get_peft_model

    base = random_flan_t5("meta")  # flan-t5-base's sizes, random weights, no memory, no download
    assert count_parameters(base)["total"] == 247_577_856
    peft_model = get_peft_model(base, PEFT_CONFIGS["lora"](TrainConfig(method="lora"), ""))
    counts = count_parameters(peft_model)
    assert counts["trainable"] == 3_538_944  # 72 q/v projections x (768x32 + 32x768)
    assert counts["total"] == 251_116_800
    assert f"{counts['percent']:.2f}" == "1.41"


def test_peft_training_never_touches_base_weights_or_a_held_original(tmp_path):
    original, tokenizer = load_model_and_tokenizer("tiny-random-t5", "float32", "cpu")
    texts = ["#Person1#: Shall we meet at noon?\n#Person2#: Yes, at the cafe."]
    config_gen = generation_config(original, max_new_tokens=10)
    before = summarize(original, tokenizer, texts, config_gen, progress=False)
    config = quick("lora")
    model, tok = build_model(config)
    base_before = {k: v.clone() for k, v in model.get_base_model().state_dict().items() if "lora_" not in k}
    lora_before = {k: v.clone() for k, v in model.state_dict().items() if "lora_B" in k}
    make_trainer(config, model, tok, tmp_path).train()
    after = model.get_base_model().state_dict()
    assert all(torch.equal(v, after[k]) for k, v in base_before.items())
    assert any(not torch.equal(v, model.state_dict()[k]) for k, v in lora_before.items())
    assert summarize(original, tokenizer, texts, config_gen, progress=False) == before


def test_saved_adapter_reloads_to_identical_generations(lora_run):
    from peft import PeftModel

    texts = ["#Person1#: Can you lend me a pen?\n#Person2#: Sure, take the blue one."]
    base, tokenizer = load_model_and_tokenizer("tiny-random-t5", "float32", "cpu")
    direct = PeftModel.from_pretrained(base, str(lora_run / "model"))
    reloaded, tok2, info = load_trained(str(lora_run), device="cpu")
    assert info["adapter"] == str(lora_run / "model")
    cfg = generation_config(direct, max_new_tokens=16)
    assert summarize(direct, tokenizer, texts, cfg, progress=False) == summarize(reloaded, tok2, texts, cfg,
                                                                                 progress=False)
    assert not any(p.requires_grad for p in reloaded.parameters())


@pytest.mark.parametrize("method", ["lora", "prompt_tuning"])
def test_gradient_checkpointing_leaves_the_loss_curve_as_it_was(method, tmp_path):
    """Checkpointing recomputes the same forward (dropout included) in backward: it may cost time, never results."""
    curves = {}
    for checkpointing in (False, True):
        run = train(quick(method, max_steps=4, gradient_checkpointing=checkpointing), tmp_path / str(checkpointing))
        state = json.loads((run / "trainer_state.json").read_text())
        curves[checkpointing] = [h["loss"] for h in state["log_history"] if "loss" in h]
    assert len(curves[True]) == 4 and all(math.isfinite(x) for x in curves[True])
    assert curves[True] == pytest.approx(curves[False], rel=1e-5)
