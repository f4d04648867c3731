"""Reusing runs: a notebook trains or scores again only when its settings changed."""

import pytest

from dialogsum_lab.errors import UserError
from dialogsum_lab.random_models import build_tiny_t5


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
