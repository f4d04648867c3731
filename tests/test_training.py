import json
import math

import pytest
import torch

from dialogsum_lab.config import TrainConfig
from dialogsum_lab.errors import UserError
from dialogsum_lab.generation import generation_config, summarize
from dialogsum_lab.modeling import (
    build_tiny_t5,
    count_parameters,
    load_model_and_tokenizer,
    load_trained,
    merge_adapter,
    random_flan_t5,
)
from dialogsum_lab.reporting import compare_runs
from dialogsum_lab.training import PEFT_CONFIGS, build_model, make_trainer, resume, train

LEARNING_RATES = {"full": 3e-3, "lora": 1e-2, "prompt_tuning": 0.3, "prefix_tuning": 3e-2, "ia3": 3e-2}


def quick(method: str, **overrides) -> TrainConfig:
    """A few steps on a fixed batch of 8 sample dialogues: enough to see the loss fall."""
    values = {"method": method, "limit_train": 8, "limit_eval": 4, "batch_size": 8, "max_steps": 8,
              "logging_steps": 1, "learning_rate": LEARNING_RATES[method], "eval_strategy": "no",
              "save_strategy": "no", "device": "cpu", "seed": 0}
    return TrainConfig(**(values | overrides))


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    return train(quick("lora", save_strategy="steps", save_steps=4, eval_strategy="steps"),
                 tmp_path_factory.mktemp("runs") / "lora")


@pytest.mark.parametrize("method", list(LEARNING_RATES))
def test_each_method_trains_and_its_loss_falls(method, tmp_path):
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


def test_merged_lora_equals_unmerged(lora_run, tmp_path):
    check = merge_adapter(str(lora_run), tmp_path / "merged", device="cpu")
    assert check["max_abs_logit_difference"] < 1e-4 and check["summaries_identical"]
    merged, _, info = load_trained(str(tmp_path / "merged"), device="cpu")
    assert info["adapter"] is None and not hasattr(merged, "peft_config")


def test_adapter_on_the_wrong_base_is_a_clear_error(lora_run, tmp_path):
    other = build_tiny_t5(tmp_path / "narrow", d_model=32)
    with pytest.raises(UserError, match="does not fit base model .*--base"):
        load_trained(str(lora_run / "model"), base=str(other), device="cpu")


def test_resume_continues_from_the_checkpoint_step(lora_run, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(lora_run, run)
    assert (run / "checkpoints" / "checkpoint-8").is_dir()
    resume(run, {"max_steps": 12})
    state = json.loads((run / "trainer_state.json").read_text())
    steps = [h["step"] for h in state["log_history"] if "loss" in h]
    assert state["global_step"] == 12
    assert steps == list(range(1, 13))  # 1-8 restored from the checkpoint, 9-12 new: none repeated


def test_resume_needs_a_checkpoint(tmp_path):
    run = train(quick("lora", max_steps=2), tmp_path / "nockpt")
    with pytest.raises(UserError, match="no checkpoint to resume from"):
        resume(run)


def test_compare_reports_the_runs_own_numbers(lora_run, tmp_path):
    from dialogsum_lab.experiments import evaluate_path

    preset = {"train": {"data": "sample", "device": "cpu"},
              "evaluate": {"split": "test", "limit": 5, "max_new_tokens": 12, "bootstrap_samples": 100}}
    evaluate_path("tiny-random-t5", preset, tmp_path / "zero", system="zero-shot")
    evaluate_path(lora_run, preset, lora_run / "eval-test", system="lora")
    text = compare_runs([tmp_path / "zero", lora_run], tmp_path / "cmp", bootstrap_samples=100)
    assert "Absolute percentage improvement of lora over the original model (zero-shot)" in text
    import pandas as pd

    table = pd.read_csv(tmp_path / "cmp" / "comparison.csv")
    for name, folder in (("zero-shot", tmp_path / "zero"), ("lora", lora_run / "eval-test")):
        metrics = json.loads((folder / "metrics.json").read_text())["rouge"]["mean_over_references"]
        row = table[table.system == name].iloc[0]
        for t in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
            assert row[t] == pytest.approx(metrics[t]["mean"], abs=1e-12)
    train_metrics = json.loads((lora_run / "train_metrics.json").read_text())
    assert table[table.system == "lora"].iloc[0]["trainable_params"] == train_metrics["trainable_parameters"]
    for name in ("rouge_bars.png", "significance.csv", "side_by_side.md", "comparison.md"):
        assert (tmp_path / "cmp" / name).stat().st_size > 0


def test_gradient_checkpointing_with_peft_trains(tmp_path):
    run = train(quick("lora", max_steps=3, gradient_checkpointing=True), tmp_path / "gc")
    state = json.loads((run / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    assert all(math.isfinite(h["loss"]) for h in state["log_history"] if "loss" in h)
