import dataclasses
import json

import pytest
import yaml

from dialogsum_lab.cli import build_parser, main
from dialogsum_lab.config import EvalConfig
from dialogsum_lab.model_card import card_metadata


def test_zero_shot_end_to_end_and_refuses_to_overwrite(tmp_path, capsys, caplog):
    out = tmp_path / "run"
    assert main(["zero-shot", "--config", "smoke", "--limit", "4", "--max-new-tokens", "8", "--out", str(out),
                 "--bootstrap-samples", "50", "--max-source-length", "16"]) == 0
    printed = capsys.readouterr().out
    assert "mean_over_references" in printed and "rougeLsum" in printed
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and set(rows[0]) == {"id", "dialogue", "references", "prediction", "details"}
    assert set(rows[0]["details"]) == {"supported_recall", "unsupported"}  # no facts: the sample records none
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_examples"] == 4 and metrics["model"] == "tiny-random-t5"
    assert metrics["generation"]["max_new_tokens"] == 8
    # Every prompt is longer than 16 tokens: counted, said once, and the summaries' lengths come from token ids.
    assert metrics["generation"]["truncated_prompts"] == 4 and metrics["generation"]["max_prompt_tokens"] > 16
    assert caplog.text.count("4 of 4 prompts are longer than max_source_length=16") == 1
    assert metrics["generation"]["hit_max_new_tokens"] == 4 and metrics["generation"]["mean_tokens"] == 8
    saved = yaml.safe_load((out / "eval_config.yaml").read_text())
    assert (saved["max_new_tokens"], saved["max_source_length"], saved["limit"]) == (8, 16, 4)
    before = (out / "metrics.json").read_text()
    assert main(["zero-shot", "--config", "smoke", "--limit", "2", "--out", str(out)]) == 2
    assert "already holds results" in capsys.readouterr().err
    assert (out / "metrics.json").read_text() == before


def test_score_text_and_jsonl_predictions(tmp_path, capsys):
    refs = tmp_path / "refs.txt"
    from dialogsum_lab.data import load_dialogsum

    test = load_dialogsum("sample")["test"]
    refs.write_text("\n".join(test["summary"]) + "\n")
    assert main(["score", "--predictions", str(refs), "--out", str(tmp_path / "s1")]) == 0
    metrics = json.loads((tmp_path / "s1" / "metrics.json").read_text())
    assert metrics["rouge"]["first_reference"]["rouge1"]["mean"] == 1.0

    short = tmp_path / "short.txt"
    short.write_text("one summary\n")
    assert main(["score", "--predictions", str(short), "--out", str(tmp_path / "s2")]) == 2
    assert "has 1 lines but the split has 12" in capsys.readouterr().err

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "nope", "prediction": "x"}) + "\n")
    assert main(["score", "--predictions", str(bad), "--out", str(tmp_path / "s3")]) == 2
    assert "1 unknown" in capsys.readouterr().err

    repeated = tmp_path / "repeated.jsonl"
    repeated.write_text("".join(json.dumps({"id": i, "prediction": s}) + "\n"
                                for i, s in [*zip(test["id"], test["summary"], strict=True), (test["id"][0], "x")]))
    assert main(["score", "--predictions", str(repeated), "--out", str(tmp_path / "s5")]) == 2
    assert f"id(s) {test['id'][0]} appear on more than one line" in capsys.readouterr().err

    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps({"id": i, "prediction": s}) + "\n"
                            for i, s in reversed(list(zip(test["id"], test["summary"], strict=True)))))
    assert main(["score", "--predictions", str(good), "--out", str(tmp_path / "s4")]) == 0


def test_missing_data_is_one_line_error(tmp_path, capsys):
    assert main(["zero-shot", "--config", "smoke", "--data", str(tmp_path / "nope.jsonl"), "--out",
                 str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dialogsum-lab: error:") and "Traceback" not in err


@pytest.mark.slow
def test_demo_runs_the_whole_lab(tmp_path, capsys):
    import pandas as pd

    out = tmp_path / "demo"
    assert main(["demo", "--config", "smoke", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Wall time by stage" in printed and "lora minus zero-shot (the baseline), in ROUGE points" in printed
    table = pd.read_csv(out / "comparison" / "comparison.csv")
    assert list(table.system) == ["zero-shot", "full", "lora", "prompt_tuning", "lead-3", "longest-3", "retrieval"]
    assert "Against the best baseline" in printed  # the models beside systems nobody trained, on ROUGE and details
    assert (out / "comparison" / "rouge_bars.png").stat().st_size > 1000
    for method in ("full", "lora", "prompt_tuning"):
        assert (out / method / "loss_curve.png").exists() and (out / method / "eval-test" / "metrics.json").exists()
        card = card_metadata(out / method / "README.md")  # every run carries its card, with the demo's scores
        assert card["library_name"] == ("transformers" if method == "full" else "peft") and card["model-index"]
    timings = json.loads((out / "timings.json").read_text())
    assert set(timings) >= {"train lora", "evaluate lora", "baselines and compare"}


@pytest.mark.slow
def test_demo_runs_the_course_preset_on_local_copies(tmp_path, capsys):
    """`--config course` with --model/--data pointing at local copies (the tiny model stands in for flan-t5-base):
    the course's step counts, subsets and 50-dialogue limit, end to end."""
    out = tmp_path / "demo"
    assert main(["demo", "--config", "smoke", "--config", "course", "--model", "tiny-random-t5", "--data", "sample",
                 "--methods", "lora",
                 "--out", str(out)]) == 0
    config = yaml.safe_load((out / "lora" / "config.yaml").read_text())
    assert config["model"] == "tiny-random-t5" and config["data"] == "sample"
    assert (config["max_steps"], config["limit_train"], config["save_strategy"]) == (20, 160, "no")
    metrics = json.loads((out / "lora" / "train_metrics.json").read_text())
    assert metrics["global_step"] == 20 and metrics["precision"] == "fp32"
    assert yaml.safe_load((out / "zero-shot" / "eval_config.yaml").read_text())["limit"] == 50


def test_train_resume_evaluate_merge_compare_from_the_command_line(tmp_path, capsys):
    run = tmp_path / "lora"
    assert main(["train", "--config", "smoke", "--method", "lora", "--max_steps", "4", "--save_strategy", "steps",
                 "--save_steps", "2",
                 "--eval_strategy", "no", "--lora_r", "4", "--out", str(run)]) == 0
    config = (run / "config.yaml").read_text()
    assert "lora_r: 4" in config and "max_steps: 4" in config
    assert main(["train", "--resume", "--out", str(run), "--max_steps", "6"]) == 0
    assert json.loads((run / "trainer_state.json").read_text())["global_step"] == 6
    assert main(["evaluate", str(run), "--limit", "3", "--max-new-tokens", "8"]) == 0
    assert (run / "eval-test" / "metrics.json").exists()
    assert main(["merge", str(run)]) == 0
    assert "Summaries identical" in capsys.readouterr().out
    assert main(["evaluate", str(run / "merged"), "--limit", "3", "--max-new-tokens", "8",
                 "--out", str(tmp_path / "merged-eval")]) == 0
    assert main(["compare", str(run), str(tmp_path / "merged-eval"), "--out", str(tmp_path / "cmp"),
                 "--bootstrap-samples", "50"]) == 0
    assert (tmp_path / "cmp" / "comparison.md").exists()


@pytest.mark.slow
def test_forgetting_check_scores_both_tasks(tmp_path, capsys):
    assert main(["forgetting", "--config", "smoke", "--out", str(tmp_path / "f")]) == 0
    text = (tmp_path / "f" / "forgetting.md").read_text()
    for name in ("original", "single-task", "multi-task", "| summary ", "| topic ", "| next_turn ",
                 "Prompts and answers"):
        assert name in text


def test_evaluation_flags_come_from_the_eval_config():
    def flags(command: str) -> set[str]:
        sub = next(a for a in build_parser()._actions if a.dest == "command").choices[command]
        return {s for a in sub._actions for s in a.option_strings}

    names = {f"--{f.name.replace('_', '-')}" for f in dataclasses.fields(EvalConfig)}
    assert names <= flags("zero-shot") and names <= flags("evaluate")
    assert {"--data", "--split", "--limit", "--rouge-tokenizer", "--bootstrap-seed", "--seed"} <= flags("score")
    assert "--max-new-tokens" not in flags("score")


@pytest.fixture(scope="module")
def custom_run(tmp_path_factory):
    """A tiny LoRA run trained with its own prompt and a short source length."""
    run = tmp_path_factory.mktemp("custom") / "run"
    assert main(["train", "--config", "smoke", "--method", "lora", "--max_steps", "2", "--eval_strategy", "no",
                 "--save_strategy", "no",
                 "--prompt_template", "Condense this chat: {dialogue} Condensed:", "--max_source_length", "24",
                 "--out", str(run)]) == 0
    return run


def test_evaluate_scores_a_run_with_the_settings_it_was_trained_with(custom_run, capsys):
    assert main(["evaluate", str(custom_run), "--limit", "3", "--max-new-tokens", "4",
                 "--bootstrap-samples", "20"]) == 0
    metrics = json.loads((custom_run / "eval-test" / "metrics.json").read_text())
    assert metrics["prompt_template"] == "Condense this chat: {dialogue} Condensed:"
    assert metrics["generation"]["max_source_length"] == 24 and metrics["generation"]["truncated_prompts"] == 3
    saved = yaml.safe_load((custom_run / "eval-test" / "eval_config.yaml").read_text())
    assert saved["prompt_template"] == "Condense this chat: {dialogue} Condensed:" and saved["max_new_tokens"] == 4


def test_overwrite_replaces_a_run_only_when_the_new_one_succeeds(tmp_path, capsys):
    run = tmp_path / "run"
    quick = ["--max_steps", "2", "--eval_strategy", "no", "--out", str(run)]
    assert main(["train", "--config", "smoke", "--method", "lora", "--save_strategy", "steps", "--save_steps", "1",
                 *quick]) == 0
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"dialogue": broken\n')
    assert main(["train", "--config", "smoke", "--method", "full", "--data", str(bad), "--overwrite", *quick]) == 2
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before  # the failed retry changed nothing
    assert "method: lora" in (run / "config.yaml").read_text()

    assert main(["train", "--config", "smoke", "--method", "full", "--save_strategy", "no", "--overwrite", *quick]) == 0
    assert (run / "model" / "model.safetensors").exists() and not (run / "model" / "adapter_config.json").exists()
    assert not list(run.glob("checkpoints/checkpoint-*")) and "method: full" in (run / "config.yaml").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl", "run"]  # no staging folder left behind

    fresh = tmp_path / "fresh"
    assert main(["train", "--config", "smoke", "--data", str(bad), "--out", str(fresh)]) == 2
    assert not fresh.exists()  # a failed new run leaves nothing to block its retry
