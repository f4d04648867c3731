"""Comparisons that mean what they say: one reference set per comparison, no scoring on trained-on dialogues, the
course's own ROUGE-Lsum, fair forgetting, honest parameter counts and labels, and dialogues without summaries."""

import json
import re

import numpy as np
import pytest
from helpers import one_line_error

from dialogsum_lab.cli import main
from dialogsum_lab.data import load_dialogsum
from dialogsum_lab.metrics import ROUGE_METRIC, compute_rouge, format_p, per_example_scores

QUICK = ["--max-steps", "2", "--eval-strategy", "no", "--save-strategy", "no", "--device", "cpu"]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_compare_refuses_systems_scored_against_different_references(tmp_path, capsys):
    """The audit's case: the same predictions scored against 3 references and against the first only."""
    test = load_dialogsum("sample")["test"]
    predictions = write_jsonl(tmp_path / "p.jsonl", [{"id": i, "prediction": s.split(".")[0]}
                                                     for i, s in zip(test["id"], test["summary"], strict=True)])
    first_only = write_jsonl(tmp_path / "test.jsonl", [{"fname": i, "dialogue": d, "summary": r[0]} for i, d, r in
                                                       zip(test["id"], test["dialogue"], test["references"],
                                                           strict=True)])
    assert main(["score", "--predictions", str(predictions), "--out", str(tmp_path / "all")]) == 0
    assert main(["score", "--predictions", str(predictions), "--data", str(first_only), "--out",
                 str(tmp_path / "first")]) == 0
    metrics = json.loads((tmp_path / "all" / "metrics.json").read_text())
    assert set(metrics["scored_against"]) >= {"ids_sha256", "references_sha256", "data", "split", "n"}
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "all"), str(tmp_path / "first"), "--out", str(tmp_path / "cmp")]) == 2
    message = one_line_error(capsys)
    assert re.search(r"scored against different references: 12 of 12 dialogues differ \(e\.g\. test_0\)", message)
    assert not (tmp_path / "cmp").exists()


@pytest.fixture(scope="module")
def holdout_run(tmp_path_factory):
    """README's single-file recipe: 20 dialogues in one file, the last 6 held out."""
    folder = tmp_path_factory.mktemp("leak")
    train = load_dialogsum("sample")["train"].select(range(20))
    mine = write_jsonl(folder / "mine.jsonl", [{"id": i, "dialogue": d, "summary": s} for i, d, s in
                                               zip(train["id"], train["dialogue"], train["summary"], strict=True)])
    assert main(["train", "--config", "smoke", "--method", "lora", "--data", str(mine), "--eval-holdout", "6", *QUICK,
                 "--out", str(folder / "run")]) == 0
    return folder / "run"


def test_a_single_file_run_is_evaluated_on_its_held_out_part_only(holdout_run):
    record = json.loads((holdout_run / "training_set.json").read_text())
    assert record["dialogues"] == 14 and len(record["held_out_ids"]) == 6 and len(record["text_sha256"]) == 14
    assert main(["evaluate", str(holdout_run), "--max-new-tokens", "4", "--bootstrap-samples", "20"]) == 0
    metrics = json.loads((holdout_run / "eval-test" / "metrics.json").read_text())
    assert metrics["n_examples"] == 6 and metrics["training_overlap"] == {"checked": True, "trained_on": 14,
                                                                         "of": 20, "excluded": 14}
    scored = [json.loads(line)["id"] for line in (holdout_run / "eval-test" / "predictions.jsonl").open()]
    assert scored == record["held_out_ids"]


def test_evaluating_on_trained_dialogues_is_refused_unless_only_the_unseen_are_scored(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--config", "smoke", "--method", "lora", "--train-split", "validation", "--eval-holdout",
                 "3", *QUICK,
                 "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--split", "validation", "--limit", "8", "--max-new-tokens", "4"]) == 2
    message = one_line_error(capsys)
    assert "6 of the 8 dialogues of sample[validation] are ones" in message and "--unseen-only" in message
    assert not (run / "eval-validation").exists()
    assert main(["evaluate", str(run), "--split", "validation", "--unseen-only", "--max-new-tokens", "4",
                 "--bootstrap-samples", "20"]) == 0
    metrics = json.loads((run / "eval-validation" / "metrics.json").read_text())
    assert metrics["n_examples"] == 3 and metrics["training_overlap"]["excluded"] == 6
    # The same dialogues under other ids in another file are still recognised by their text.
    validation = load_dialogsum("sample")["validation"]
    renamed = write_jsonl(tmp_path / "test.jsonl", [{"id": f"x{i}", "dialogue": d, "summary": s} for i, (d, s) in
                                                    enumerate(zip(validation["dialogue"], validation["summary"],
                                                                  strict=True))])
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", str(renamed), "--max-new-tokens", "4", "--out",
                 str(tmp_path / "e")]) == 2
    assert "6 of the 9 dialogues" in one_line_error(capsys)
    # Zero-shot scoring of the base model has no training set to check.
    assert main(["zero-shot", "--config", "smoke", "--split", "validation", "--limit", "2", "--max-new-tokens", "2",
                 "--out",
                 str(tmp_path / "z")]) == 0


def test_the_course_view_scores_rougelsum_as_the_lab_did():
    prediction = "Tom lends Anna his pen. She signs the form."
    references = [["Anna signs the form. Tom gives Anna a pen.", "Tom lends a pen."]]
    views = per_example_scores([prediction], references)
    assert views["course_lab"]["rougeLsum"][0] == pytest.approx(views["course_lab"]["rougeL"][0])
    assert views["mean_over_references"]["rougeLsum"][0] > views["course_lab"]["rougeLsum"][0] + 0.05
    for t in ("rouge1", "rouge2", "rougeL"):
        assert views["course_lab"][t][0] == views["mean_over_references"][t][0]


def test_the_evaluate_module_loads_offline_and_gives_rouge_scores_and_the_lab_aggregate():
    import evaluate
    from rouge_score import rouge_scorer, scoring

    rouge = evaluate.load(ROUGE_METRIC)
    predictions = ["Tom lends Anna his pen. She signs the form.", "The shop opens on Sunday mornings.",
                   "Anna is late again."]
    references = ["Tom gives Anna a pen. Anna signs the forms.", "Sunday mornings only.", "Anna apologises."]
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    direct = [scorer.score(r, p) for r, p in zip(references, predictions, strict=True)]
    rows = rouge.compute(predictions=predictions, references=references, use_stemmer=True, use_aggregator=False)
    for key in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
        assert rows[key] == pytest.approx([d[key].fmeasure for d in direct])
    # The lab's aggregate: rouge_score's bootstrap median, seeded here so it repeats exactly.
    aggregator = scoring.BootstrapAggregator()
    for d in direct:
        aggregator.add_scores(d)
    np.random.seed(7)
    expected = {k: v.mid.fmeasure for k, v in aggregator.aggregate().items()}
    assert rouge.compute(predictions=predictions, references=references, use_stemmer=True, seed=7) == \
        pytest.approx(expected)
    # On one row per (dialogue, reference), as the lab's 1,500-row test split, its mean is our course view.
    views = rouge.compute(predictions=predictions, references=[[r] for r in references], views=True,
                          bootstrap_samples=50)
    assert views["rouge"]["course_lab"]["rougeL"]["mean"] == pytest.approx(np.mean(rows["rougeL"]))
    assert views == compute_rouge(predictions, [[r] for r in references], 50)


def test_p_values_below_the_bootstraps_resolution_are_not_zero():
    assert format_p(0.0, 1000) == "< 0.001" and format_p(0.0, 200) == "< 0.005"
    assert format_p(0.042, 1000) == "0.042"


def test_improvement_lines_are_in_points_and_name_the_baseline(tmp_path):
    from dialogsum_lab.reporting import improvements

    def system(name, r1):
        return {"name": name, "metrics": {"rouge": {"mean_over_references": {
            t: {"mean": r1} for t in ("rouge1", "rouge2", "rougeL", "rougeLsum")}}}}

    lines = improvements([system("full", 0.30), system("zero-shot", 0.25), system("lora", 0.40)])
    assert lines[0] == "zero-shot minus full (the baseline), in ROUGE points (F1 x 100):"
    assert lines[1] == "  rouge1: -5.00 points" and "%" not in "".join(lines)
    assert "original model" not in "".join(lines)


def test_prompt_tuning_counts_the_parameters_that_reach_the_model():
    """flan-t5-base's width (d_model 768) at 20 virtual tokens: peft allocates 30,720, the model reads 15,360."""
    from peft import PromptTuningConfig, TaskType, get_peft_model

    from dialogsum_lab.config import TrainConfig
    from dialogsum_lab.methods import PEFT_CONFIGS
    from dialogsum_lab.modeling import count_parameters
    from dialogsum_lab.random_models import random_flan_t5

    base = random_flan_t5(vocab_size=64, num_layers=1, d_ff=64)  # the width decides the count
    model = get_peft_model(base, PromptTuningConfig(task_type=TaskType.SEQ_2_SEQ_LM, num_virtual_tokens=20))
    counts = count_parameters(model)
    assert (counts["trainable"], counts["used"]) == (30_720, 15_360)
    lora = get_peft_model(random_flan_t5(vocab_size=64, num_layers=1, d_ff=64),
                          PEFT_CONFIGS["lora"](TrainConfig(method="lora"), ""))
    assert count_parameters(lora)["used"] == count_parameters(lora)["trainable"]


def test_dialogues_without_summaries_are_summarised_and_never_scored(tmp_path, capsys):
    hidden = write_jsonl(tmp_path / "dialogsum.hiddentest.dialogue.jsonl",
                         [{"fname": f"hiddentest_{i}", "dialogue": d}
                          for i, d in enumerate(load_dialogsum("sample")["test"]["dialogue"][:3])])
    out = tmp_path / "summaries"
    assert main(["summarize", "--model", "tiny-random-t5", "--data", str(hidden), "--max-new-tokens", "5",
                 "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "predictions.jsonl").open()]
    assert [r["id"] for r in rows] == ["hiddentest_0", "hiddentest_1", "hiddentest_2"]
    assert set(rows[0]) == {"id", "summary", "prompt_tokens", "summary_tokens", "finished"}
    assert rows[0]["summary_tokens"] == 5 and rows[0]["prompt_tokens"] > 20
    capsys.readouterr()
    assert main(["zero-shot", "--config", "smoke", "--data", str(hidden), "--max-new-tokens", "2", "--out",
                 str(tmp_path / "z")]) == 2
    assert "3 of 3 dialogue(s) have no summary to score against" in one_line_error(capsys)
    assert main(["train", "--config", "smoke", "--data", str(hidden), *QUICK, "--out", str(tmp_path / "t")]) == 2
    assert "3 of 3 dialogues of the training split" in one_line_error(capsys)
    assert not (tmp_path / "z").exists() and not (tmp_path / "t").exists()
    assert main(["summarize", "--data", str(hidden), "--out", str(tmp_path / "none")]) == 2
    assert "--model M" in one_line_error(capsys)


def test_a_summarize_file_scores_later_against_references(tmp_path):
    out = tmp_path / "summaries"
    assert main(["summarize", "--model", "tiny-random-t5", "--limit", "3", "--max-new-tokens", "4",
                 "--out", str(out)]) == 0
    assert main(["score", "--predictions", str(out / "predictions.jsonl"), "--limit", "3", "--out",
                 str(tmp_path / "scored")]) == 0
    assert json.loads((tmp_path / "scored" / "metrics.json").read_text())["n_examples"] == 3


@pytest.mark.slow
def test_forgetting_trains_both_mixtures_for_equal_steps_and_tests_a_task_neither_has(tmp_path):
    from dialogsum_lab.experiments import run_forgetting

    preset = {"train": {"limit_train": 8, "batch_size": 4, "epochs": 1, "eval_strategy": "no",
                        "save_strategy": "no", "device": "cpu"},
              "methods": {"lora": {"learning_rate": 1e-2}},
              "evaluate": {"limit": 3, "max_new_tokens": 4, "bootstrap_samples": 20}}
    table = run_forgetting(preset, tmp_path / "f", method="lora")
    assert list(table["system"]) == ["original", "single-task", "multi-task"]
    assert set(table.columns) == {"system", "summary", "topic", "next_turn"}
    steps = {name: json.loads((tmp_path / "f" / name / "trainer_state.json").read_text())["global_step"]
             for name in ("single-task", "multi-task")}
    assert steps == {"single-task": 2, "multi-task": 2}  # 8 summaries at batch 4: the multi-task run gets as many
    report = (tmp_path / "f" / "forgetting.md").read_text()
    assert "next_turn: in neither mixture" in report and "topic: in the multi-task mixture only" in report
    assert re.search(r"\d\.\d{4} \[\d\.\d{4}, \d\.\d{4}\]", report) and "## Prompts and answers" in report
    assert "- single-task: '" in report
    saved = json.loads((tmp_path / "f" / "forgetting.json").read_text())
    assert saved["optimizer_steps"] == 2 and {t["task"] for t in saved["paired_vs_original"]} == {
        "summary", "topic", "next_turn"}
    nt = [json.loads(line) for line in (tmp_path / "f" / "eval-original-next_turn" / "predictions.jsonl").open()]
    assert all(r["references"][0].startswith("#Person") and r["references"][0] not in r["dialogue"] for r in nt)


def test_the_merge_check_compares_eight_dialogues_of_the_runs_own_data(tmp_path):
    from dialogsum_lab.merging import merge_adapter

    assert main(["train", "--config", "smoke", "--method", "lora", *QUICK, "--out", str(tmp_path / "run")]) == 0
    check = merge_adapter(str(tmp_path / "run"), tmp_path / "merged", device="cpu")
    assert check["dialogues_checked"] == 8 and check["dialogues_from"] == "sample[test]"
    assert (tmp_path / "merged" / "training_set.json").is_file()
