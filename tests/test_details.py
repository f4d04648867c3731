"""The detail view (details.py) on hand-built cases, the baselines (baselines.py) as systems, and both where a user
meets them: `baseline`, `compare --baselines`, metrics.json and predictions.jsonl. Model-free: no model is loaded."""

import json

import numpy as np
import pytest
from helpers import one_line_error

from dialogsum_lab.baselines import Baseline, lead, longest, run_baseline
from dialogsum_lab.cli import main
from dialogsum_lab.config import SAMPLE_DIR, EvalConfig
from dialogsum_lab.data import load_dialogsum
from dialogsum_lab.details import detail_words, example_details, summarise, supported_recall, unsupported
from dialogsum_lab.files import read_json, read_jsonl
from dialogsum_lab.world import all_pools, generate

DIALOGUE = ("#Person1#: Welcome to the Old Fork. Can I help you?\n"
            "#Person2#: A table for six on Friday at seven, please. The name is Mei Brown.\n"
            "#Person1#: Done: six people, Friday, seven o'clock. It will be twenty-five dollars a head.")
REFERENCE = "#Person2# books a table at the Old Fork for six people on Friday at seven under the name Mei Brown."
FACTS = [{"slot": "restaurant", "value": "the Old Fork", "pool": "restaurant"},
         {"slot": "count", "value": "six", "pool": "count"}, {"slot": "day", "value": "Friday", "pool": "day"},
         {"slot": "time", "value": "seven", "pool": "time"}]
POOLS = {"restaurant": ["the Old Fork", "the Old Garden", "the Blue Lantern"], "count": ["two", "six", "seven"],
         "day": ["Monday", "Friday"], "time": ["seven", "two", "half past six"]}


def test_a_copied_reference_keeps_every_detail_and_invents_none():
    made = example_details(REFERENCE, DIALOGUE, [REFERENCE], FACTS, POOLS)
    assert made["supported_recall"] == 1.0 and made["unsupported"] == []
    assert made["facts"] == {"key": ["old fork", "six", "friday", "seven"], "missed": [], "wrong": []}


def test_a_paraphrase_keeps_its_score():
    paraphrase = "Mei Brown reserves a table for six at the Old Fork, on Friday at seven, the booking's name is Brown."
    made = example_details(paraphrase, DIALOGUE, [REFERENCE], FACTS, POOLS)
    assert made["unsupported"] == [] and made["facts"]["missed"] == [] and made["facts"]["wrong"] == []
    assert made["supported_recall"] == pytest.approx(8 / 9)  # every detail but "people", a word it did not use


def test_one_swapped_name_and_number_are_wrong_details():
    swapped = REFERENCE.replace("Mei Brown", "Mei Novak").replace("Old Fork", "Old Garden").replace("six", "two")
    made = example_details(swapped, DIALOGUE, [REFERENCE], FACTS, POOLS)
    assert made["unsupported"] == ["Garden", "two", "Novak"]  # as written; "two" is compared as 2
    assert made["facts"]["missed"] == ["old fork", "six"] and made["facts"]["wrong"] == ["old garden", "two"]
    assert made["supported_recall"] < 1.0


def test_numbers_compare_as_digits_and_sentence_initial_capitals_are_not_names():
    assert unsupported("It costs 25 dollars a head.", DIALOGUE, [REFERENCE]) == []  # "twenty-five" in the dialogue
    assert unsupported("Booking on Friday at 8.", DIALOGUE, [REFERENCE]) == ["8"]
    assert detail_words("#Person2# visits Dr. Singh. Then Anna left at five.") == ["Singh", "Anna", "five"]
    assert supported_recall("anything", "no shared words here", ["unrelated text entirely"]) is None


def test_longer_values_win_over_the_shorter_ones_inside_them():
    facts = [{"slot": "time", "value": "half past six", "pool": "time"}]
    made = example_details("They meet at half past six.", "#Person1#: Half past six?", ["At half past six."],
                           facts, POOLS)
    assert made["facts"] == {"key": ["half past six"], "missed": [], "wrong": []}  # "six" is not another time


def test_summaries_carry_means_with_bootstrap_intervals():
    rows = [example_details(s, DIALOGUE, [REFERENCE], FACTS, POOLS)
            for s in (REFERENCE, REFERENCE.replace("Friday", "Monday"), "Nothing at all.", REFERENCE)]
    block = summarise(rows, samples=200)
    assert block["fully_correct"]["mean"] == 0.5 and block["wrong"]["mean"] == 0.25 and block["unsupported"]["n"] == 4
    for key in ("supported_recall", "fact_recall", "fully_correct"):
        assert 0 <= block[key]["ci_low"] <= block[key]["mean"] <= block[key]["ci_high"] <= 1


def test_every_miniature_dialogue_records_facts_that_it_states():
    pools = all_pools()
    for dialogue in generate("test", 40):
        assert dialogue.facts
        for _slot, value, pool in dialogue.facts:
            assert value in pools[pool] and value.lower().removeprefix("the ") in dialogue.dialogue.lower()
        made = example_details(dialogue.references[0], dialogue.dialogue, list(dialogue.references),
                               dialogue.fact_rows(), pools)
        assert made["facts"]["key"] and not made["facts"]["missed"] and not made["facts"]["wrong"]
    loaded = load_dialogsum("miniature")["test"]
    assert loaded[0]["facts"] == generate("test", 1)[0].fact_rows()


def test_lead_and_longest_keep_turns_in_order():
    assert lead(DIALOGUE, 1) == DIALOGUE.split("\n")[0]
    lines = DIALOGUE.split("\n")
    assert longest(DIALOGUE, 2) == "\n".join(lines[1:])  # the two longest, as said
    assert longest(DIALOGUE, 9) == DIALOGUE


def test_retrieval_copies_a_training_summary_never_the_scored_one(tmp_path):
    config = EvalConfig(data="sample", split="test", bootstrap_samples=100)
    out, metrics = run_baseline(Baseline("retrieval"), config, tmp_path / "retrieval")
    train = load_dialogsum("sample")["train"]
    rows = read_jsonl(out / "predictions.jsonl")
    assert all(r["retrieved_from"] in train["id"] and r["prediction"] in train["summary"] for r in rows)
    assert all(r["prediction"] not in r["references"] for r in rows) and "details" in rows[0]
    assert metrics["system"] == "retrieval" and metrics["baseline"]["train_split"] == "train"
    assert set(metrics["details"]) >= {"supported_recall", "unsupported"} and metrics["scored_against"]["n"] == 12


def test_baseline_command_and_its_mistakes(tmp_path, capsys):
    assert main(["baseline", "--kind", "longest", "--data", "sample", "--split", "test", "--out",
                 str(tmp_path / "longest"), "--bootstrap-samples", "50"]) == 0
    assert "details kept" in capsys.readouterr().out
    assert read_json(tmp_path / "longest" / "metrics.json")["system"] == "longest-3"
    assert main(["baseline", "--kind", "retrieval", "--data", "sample", "--split", "train",
                 "--out", str(tmp_path / "x")]) == 2
    assert "scored on" in one_line_error(capsys) and not (tmp_path / "x").exists()
    single = tmp_path / "mine.jsonl"
    single.write_text((SAMPLE_DIR / "test.jsonl").read_text())  # a file that names no split
    assert main(["baseline", "--kind", "retrieval", "--data", str(single), "--out", str(tmp_path / "y")]) == 2
    assert "--train-data" in one_line_error(capsys)
    assert main(["baseline", "--kind", "lead", "--turns", "0", "--data", "sample", "--out", str(tmp_path / "z")]) == 2
    assert "--turns" in one_line_error(capsys)


def test_compare_with_baselines_says_who_beats_them(tmp_path, capsys):
    test = load_dialogsum("sample")["test"]
    copied = tmp_path / "copied.jsonl"  # a "system" that writes the first human summary: beats every baseline
    copied.write_text("".join(json.dumps({"id": i, "prediction": r[0]}) + "\n"
                              for i, r in zip(test["id"], test["references"], strict=True)))
    assert main(["score", "--predictions", str(copied), "--data", "sample", "--split", "test",
                 "--out", str(tmp_path / "copied"), "--bootstrap-samples", "100"]) == 0
    assert main(["compare", str(tmp_path / "copied"), "--baselines", "--out", str(tmp_path / "cmp"),
                 "--bootstrap-samples", "100"]) == 0
    report = (tmp_path / "cmp" / "baselines.md").read_text()
    assert "Against the best baseline" in report and "**copied**" in report
    table = read_json(tmp_path / "cmp" / "comparison.json")["table"]
    assert [r["system"] for r in table] == ["copied", "lead-3", "longest-3", "retrieval"]
    assert [r["kind"] for r in table] == ["model", "baseline", "baseline", "baseline"]
    assert table[0]["unsupported"] == 0 and np.isclose(table[0]["supported_recall"], 1.0)
    assert (tmp_path / "cmp" / "baselines" / "retrieval" / "metrics.json").is_file()
