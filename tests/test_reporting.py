"""Comparisons report each run's own numbers, with the table, chart, tests and side-by-side."""

import json

import pandas as pd
import pytest

from dialogsum_lab.reporting import compare_runs


def test_compare_reports_the_runs_own_numbers(lora_run, tmp_path):
    from dialogsum_lab.experiments import evaluate_path

    preset = {"train": {"data": "sample", "device": "cpu"},
              "evaluate": {"split": "test", "limit": 5, "max_new_tokens": 12, "bootstrap_samples": 100}}
    evaluate_path("tiny-random-t5", preset, tmp_path / "zero", system="zero-shot")
    evaluate_path(lora_run, preset, lora_run / "eval-test", system="lora")
    text = compare_runs([tmp_path / "zero", lora_run], tmp_path / "cmp", bootstrap_samples=100)
    assert "lora minus zero-shot (the baseline), in ROUGE points (F1 x 100):" in text

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
