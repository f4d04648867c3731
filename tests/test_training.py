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
    import shutil

    foreign = shutil.copytree(lora_run / "model", tmp_path / "foreign")
    (foreign / "base_model.json").unlink()
    narrow = build_tiny_t5(tmp_path / "narrow", d_model=32)
    with pytest.raises(UserError, match="does not fit base model .*--base"):
        load_trained(str(foreign), base=str(narrow), device="cpu")


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


def test_notebook_runs_are_reused_only_with_equal_settings(tmp_path, capsys):
    import copy

    from dialogsum_lab.experiments import ensure_baseline, ensure_run

    preset = {"train": {"limit_train": 8, "max_steps": 2, "eval_strategy": "no", "save_strategy": "no",
                        "device": "cpu"},
              "methods": {"lora": {"learning_rate": 1e-2}},
              "evaluate": {"limit": 2, "max_new_tokens": 4, "bootstrap_samples": 20}}
    run = ensure_run(preset, "lora", tmp_path / "lora")
    stamp = (run / "train_metrics.json").stat().st_mtime_ns
    assert ensure_run(preset, "lora", run) == run and "Reusing the finished lora run" in capsys.readouterr().out
    edited = copy.deepcopy(preset)
    edited["methods"]["lora"]["learning_rate"] = 2e-2
    with pytest.raises(UserError, match=r"other settings \(learning_rate: 0.01 -> 0.02\).*overwrite=True"):
        ensure_run(edited, "lora", run)
    longer = copy.deepcopy(preset)
    longer["evaluate"]["max_new_tokens"] = 5
    with pytest.raises(UserError, match=r"eval-test was made with other settings \(max_new_tokens: 4 -> 5\)"):
        ensure_run(longer, "lora", run)
    assert (run / "train_metrics.json").stat().st_mtime_ns == stamp  # refused, nothing touched
    ensure_run(edited, "lora", run, overwrite=True)
    assert "learning_rate: 0.02" in (run / "config.yaml").read_text()

    ensure_baseline(preset, tmp_path / "zero-shot")
    other_model = copy.deepcopy(preset)
    other_model["train"]["model"] = str(build_tiny_t5(tmp_path / "other"))
    with pytest.raises(UserError, match="model: 'tiny-random-t5' -> "):
        ensure_baseline(other_model, tmp_path / "zero-shot")
