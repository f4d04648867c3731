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
    ({"method": "qlora"}, "method 'qlora' is unknown"),
    ({"precision": "fp16"}, "fp16 overflows in T5"),
    ({"prompt_template": "Summarize:"}, "needs a {dialogue} placeholder"),
    ({"lora_r": 0}, "lora_r and lora_alpha must be >= 1"),
    ({"learning_rate": -1.0}, "learning_rate must be positive"),
    ({"epochs": 0, "max_steps": -1}, "set epochs > 0 or max_steps > 0"),
    ({"lr": 0.1}, "unknown setting\\(s\\) lr"),
])
def test_invalid_settings_name_the_fix(values, message):
    with pytest.raises(UserError, match=message):
        TrainConfig.from_dict(values)


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(UserError, match="no preset 'nope'. Choose one of .*lab.*smoke"):
        load_preset("nope")
