"""Settings: every preset validates for every method without building anything, every config class round-trips
exactly (as peft tests its configs), `auto` is decided once where a config is made, and bad values name the fix."""

import dataclasses

import pytest
import yaml

from dialogsum_lab.config import CONFIG_DIR, DEFAULT_LEARNING_RATES, METHODS, EvalConfig, TrainConfig
from dialogsum_lab.errors import UserError
from dialogsum_lab.preset import Preset

PRESETS = sorted(CONFIG_DIR.glob("*.yaml"))
CONFIGS = {
    "TrainConfig": [TrainConfig(), TrainConfig(method="full"), TrainConfig(method="prompt_tuning", epochs=2,
                                                                          lora_target_modules=["q", "k"]),
                    TrainConfig(method="ia3", learning_rate=0.5, limit_train=10, multitask=True)],
    "EvalConfig": [EvalConfig(), EvalConfig(task="next_turn", limit=5, unseen_only=True, rouge_tokenizer="unicode"),
                   EvalConfig(prompt_template="Condense: {dialogue}", compile=True)],
}


def test_presets_exist():
    assert {p.stem for p in PRESETS} >= {"miniature", "smoke", "course", "lab"}


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_every_preset_validates_for_every_method_without_building_anything(path):
    preset = Preset.load(str(path))
    for method in METHODS:
        config = preset.train_config(method)
        assert config.method == method and config.learning_rate > 0
    assert preset.eval_config().split in ("validation", "test")


def test_lab_preset_keeps_the_labs_settings():
    preset = Preset.load("lab")
    lora = preset.train_config("lora")
    assert (lora.model, lora.data) == ("google/flan-t5-base", "knkarthick/dialogsum")
    assert (lora.lora_r, lora.lora_alpha, lora.lora_target_modules, lora.lora_dropout) == (32, 32, ["q", "v"], 0.05)
    assert lora.learning_rate == 1e-3
    assert preset.train_config("full").learning_rate == 1e-5
    assert preset.train_config("prompt_tuning").num_virtual_tokens == 20
    # PEFT checkpoints its activations (its peak would otherwise sit near full fine-tuning's); full does not
    checkpointing = {m: preset.train_config(m).gradient_checkpointing for m in ("full", "lora", "prompt_tuning",
                                                                            "prefix_tuning")}
    assert checkpointing == {"full": False, "lora": True, "prompt_tuning": True, "prefix_tuning": False}


@pytest.mark.parametrize(("kind", "config"), [(k, c) for k, cs in CONFIGS.items() for c in cs],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_every_config_round_trips_exactly(kind, config, tmp_path):
    cls = type(config)
    assert cls.from_dict(config.to_dict()) == config
    path = tmp_path / "saved.yaml"
    path.write_text(yaml.safe_dump(config.to_dict()))
    assert cls.load(path) == config
    assert set(config.to_dict()) == {f.name for f in dataclasses.fields(cls)}


def test_auto_is_decided_where_a_config_is_made():
    train, evaluation = TrainConfig(), EvalConfig()
    assert train.device in ("cpu", "cuda") and train.precision in ("bf16", "fp32")
    assert train.learning_rate == DEFAULT_LEARNING_RATES[train.method]
    assert evaluation.device in ("cpu", "cuda") and evaluation.dtype in ("bfloat16", "float32")
    assert TrainConfig(device="cpu", precision="auto").precision == "fp32"


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


def test_a_preset_is_checked_once_when_it_is_made():
    with pytest.raises(UserError, match="no preset 'nope'. Choose one of .*lab.*miniature.*smoke"):
        Preset.load("nope")
    with pytest.raises(UserError, match="unknown method or evaluate setting"):
        Preset.load({"methods": {"qlora": {}}})
    with pytest.raises(UserError, match="batch_size is 'eight'"):  # a bad value fails at load, not mid-run
        Preset.load({"methods": {"ia3": {"batch_size": "eight"}}})
    assert Preset.load("smoke", model="elsewhere").train_config("lora").model == "elsewhere"


def test_eval_config_takes_a_training_runs_own_prompt_and_length(tmp_path):
    template = "Condense this chat: {dialogue} Condensed:"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(
        TrainConfig(prompt_template=template, max_source_length=64, data="elsewhere.jsonl", device="cuda").to_dict()))
    smoke = Preset.load("smoke")
    config = smoke.eval_config(run=tmp_path)
    assert (config.template, config.max_source_length, config.data) == (template, 64, "elsewhere.jsonl")
    assert config.device == TrainConfig(device="auto").device  # trained on a GPU, scored wherever it is now
    assert config.max_new_tokens == smoke.evaluate["max_new_tokens"]
    none = Preset.load(None)
    assert none.eval_config(run=tmp_path, overrides={"max_source_length": 128}).max_source_length == 128
    assert none.eval_config(run=tmp_path, overrides={"task": "topic"}).template.startswith("What is the topic")
    with pytest.raises(UserError, match="batch_size is 'eight'; it must be a whole number"):
        EvalConfig.from_dict({"batch_size": "eight"})


def test_settings_arrive_as_strings_and_are_converted_or_refused():
    config = TrainConfig.from_dict({"batch_size": "8", "multitask": "false", "epochs": "2", "learning_rate": "null",
                                    "lora_target_modules": "q,v"})
    assert (config.batch_size, config.multitask, config.epochs) == (8, False, 2.0)
    assert config.learning_rate == DEFAULT_LEARNING_RATES["lora"]  # null: the method's own
    assert config.lora_target_modules == ["q", "v"]
    with pytest.raises(UserError, match="multitask is 'nope'; write true or false"):
        TrainConfig.from_dict({"multitask": "nope"})
