import dataclasses

import pytest
import yaml

from dialogsum_lab.config import CONFIG_DIR, METHODS, TrainConfig, load_preset, train_config
from dialogsum_lab.errors import UserError

PRESETS = sorted(CONFIG_DIR.glob("*.yaml"))


def test_presets_exist():
    assert {p.stem for p in PRESETS} >= {"smoke", "lab"}


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_every_preset_validates_for_every_method_without_building_anything(path):
    preset = load_preset(str(path))
    for method in METHODS:
        config = train_config(preset, method)
        assert config.method == method and config.resolved_learning_rate > 0
    assert preset["evaluate"]["split"] in ("validation", "test")


def test_lab_preset_keeps_the_labs_settings():
    preset = load_preset("lab")
    lora = train_config(preset, "lora")
    assert (lora.model, lora.data) == ("google/flan-t5-base", "knkarthick/dialogsum")
    assert (lora.lora_r, lora.lora_alpha, lora.lora_target_modules, lora.lora_dropout) == (32, 32, ["q", "v"], 0.05)
    assert lora.resolved_learning_rate == 1e-3
    assert train_config(preset, "full").resolved_learning_rate == 1e-5
    assert train_config(preset, "prompt_tuning").num_virtual_tokens == 20
    # PEFT checkpoints its activations (its peak would otherwise sit near full fine-tuning's); full does not
    checkpointing = {m: train_config(preset, m).gradient_checkpointing for m in ("full", "lora", "prompt_tuning",
                                                                             "prefix_tuning")}
    assert checkpointing == {"full": False, "lora": True, "prompt_tuning": True, "prefix_tuning": False}


def test_round_trip_through_yaml(tmp_path):
    config = TrainConfig(method="prompt_tuning", epochs=2, learning_rate=0.5, lora_target_modules=["q", "k"])
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config.to_dict()))
    assert TrainConfig.load(path) == config
    assert set(config.to_dict()) == {f.name for f in dataclasses.fields(TrainConfig)}


def test_yaml_scientific_notation_is_a_number(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("learning_rate: 1e-5\nmethod: full\n")
    assert TrainConfig.load(path).learning_rate == 1e-5


@pytest.mark.parametrize(("values", "message"), [
    ({"method": "qlora"}, "method is 'qlora'; choose one of full, lora"),
    ({"precision": "fp16"}, "fp16 overflows in T5"),
    ({"prompt_template": "Summarize:"}, "needs a {dialogue} placeholder"),
    ({"lora_r": 0}, "lora_r and lora_alpha must be >= 1"),
    ({"learning_rate": -1.0}, "learning_rate must be positive"),
    ({"epochs": 0, "max_steps": -1}, "set epochs > 0 or max_steps > 0"),
    ({"lr": 0.1}, "unknown setting\\(s\\) lr"),
    ({"device": "cuda:1"}, "first visible GPU.*CUDA_VISIBLE_DEVICES=1"),
    ({"method": "prefix_tuning", "gradient_checkpointing": True}, "prefix_tuning cannot use gradient_checkpointing"),
])
def test_invalid_settings_name_the_fix(values, message):
    with pytest.raises(UserError, match=message):
        TrainConfig.from_dict(values)


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(UserError, match="no preset 'nope'. Choose one of .*lab.*smoke"):
        load_preset("nope")


def test_eval_config_takes_a_training_runs_own_prompt_and_length(tmp_path):
    from dialogsum_lab.config import EvalConfig, eval_config

    template = "Condense this chat: {dialogue} Condensed:"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(
        TrainConfig(prompt_template=template, max_source_length=64, data="elsewhere.jsonl", device="cuda").to_dict()))
    config = eval_config(load_preset("smoke"), run=tmp_path)
    assert (config.template, config.max_source_length, config.data) == (template, 64, "elsewhere.jsonl")
    assert config.device == "auto"  # trained on a GPU, scored wherever it is now
    assert config.max_new_tokens == load_preset("smoke")["evaluate"]["max_new_tokens"]
    assert eval_config(None, run=tmp_path, overrides={"max_source_length": 128}).max_source_length == 128
    assert eval_config(None, run=tmp_path, overrides={"task": "topic"}).template.startswith("What is the topic")
    assert EvalConfig.from_dict(config.to_dict()) == config  # saved beside metrics.json, it loads back
    with pytest.raises(UserError, match="batch_size is 'eight'; it must be a whole number"):
        EvalConfig.from_dict({"batch_size": "eight"})


def test_settings_arrive_as_strings_and_are_converted_or_refused():
    config = TrainConfig.from_dict({"batch_size": "8", "multitask": "false", "epochs": "2", "learning_rate": "null",
                                    "lora_target_modules": "q,v"})
    assert (config.batch_size, config.multitask, config.epochs, config.learning_rate) == (8, False, 2.0, None)
    assert config.lora_target_modules == ["q", "v"]
    with pytest.raises(UserError, match="multitask is 'nope'; write true or false"):
        TrainConfig.from_dict({"multitask": "nope"})
