import numpy as np
import pytest
from rouge_score import rouge_scorer

from dialogsum_lab.metrics import (
    ROUGE_TYPES,
    UnicodeTokenizer,
    bootstrap_ci,
    compute_rouge,
    paired_bootstrap,
    per_example_scores,
    rouge_matches,
    split_sentences,
)

PREDICTION = "Tom lends Anna his pen. She signs the form."
REFERENCES = ["Anna borrows a pen from Tom to sign a form.", "Tom gives Anna a pen. Anna signs the forms.",
              "The pen is borrowed."]


def test_matches_rouge_score_called_directly():
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    direct = scorer.score("Anna borrows a pen from Tom to sign a form.",
                          "Tom lends Anna his pen.\nShe signs the form.")
    ours = per_example_scores([PREDICTION], [REFERENCES[:1]])
    for t in ROUGE_TYPES:
        assert ours["first_reference"][t][0] == pytest.approx(direct[t].fmeasure, abs=1e-12)
    # by hand: 5 shared stems (tom anna pen sign form), P = 5/9, R = 5/10, F1 = 10/19
    assert direct["rouge1"].fmeasure == pytest.approx(10 / 19, abs=1e-12)


def test_rouge_lsum_uses_sentence_lines():
    assert split_sentences("One thing. Two things! Three?") == "One thing.\nTwo things!\nThree?"
    # Sentences in the other order: one LCS over the whole text misses one of them; summary-level LCS does not.
    ours = per_example_scores(["She signs the form. Tom lends Anna his pen."], [REFERENCES[1:2]])["first_reference"]
    assert ours["rougeLsum"][0] > ours["rougeL"][0]


def test_multi_reference_views():
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    f1 = {t: [scorer.score(split_sentences(r), split_sentences(PREDICTION))[t].fmeasure for r in REFERENCES]
          for t in ROUGE_TYPES}
    views = per_example_scores([PREDICTION], [REFERENCES])
    multi = scorer.score_multi([split_sentences(r) for r in REFERENCES], split_sentences(PREDICTION))
    for t in ROUGE_TYPES:
        assert views["first_reference"][t][0] == pytest.approx(f1[t][0])
        assert views["mean_over_references"][t][0] == pytest.approx(np.mean(f1[t]))
        assert views["best_reference"][t][0] == pytest.approx(max(f1[t]))
        assert views["best_reference"][t][0] == pytest.approx(multi[t].fmeasure)
    assert views["best_reference"]["rouge1"][0] > views["mean_over_references"]["rouge1"][0]


def test_bootstrap_interval_is_seeded_and_brackets_the_mean():
    scores = np.random.default_rng(1).uniform(0.1, 0.6, size=200)
    low, high = bootstrap_ci(scores, samples=500, seed=3)
    assert low < scores.mean() < high
    assert (low, high) == bootstrap_ci(scores, samples=500, seed=3)
    assert high - low < 0.05


def test_compute_rouge_report_shape():
    metrics = compute_rouge([PREDICTION, "nothing alike"], [REFERENCES, ["A cat sleeps."]], bootstrap_samples=100)
    assert metrics["n_examples"] == 2
    assert metrics["references_per_example"] == {"min": 1, "max": 3, "mean": 2.0}
    for view in ("first_reference", "mean_over_references", "best_reference"):
        for t in ROUGE_TYPES:
            cell = metrics["rouge"][view][t]
            assert cell["ci_low"] <= cell["mean"] <= cell["ci_high"]


def test_paired_bootstrap_detects_a_clear_improvement():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.2, 0.4, size=100)
    better = paired_bootstrap(a, a + 0.05, samples=500)
    assert better["significant"] and better["p_value"] < 0.01 and better["difference"] == pytest.approx(0.05)
    noise = paired_bootstrap(a, a + rng.normal(0, 0.05, size=100), samples=500)
    assert noise["ci_low"] < 0 < noise["ci_high"]


def test_default_tokenizer_hides_non_ascii_text_and_says_so(caplog):
    emoji, chinese = "🎂🎉", "会议在3点开始"  # a wrong summary that shares only the digit with its reference
    with caplog.at_level("WARNING"):
        default = compute_rouge([emoji, chinese, ""], [[emoji], ["电影在3点"], ["A cat sleeps."]], bootstrap_samples=10)
    scores = per_example_scores([emoji, chinese], [[emoji], ["电影在3点"]])["first_reference"]["rouge1"]
    assert list(scores) == [0.0, 1.0]  # what rouge_score's own tokenizer gives: both wrong
    assert default["text_check"] == {"blank_predictions": 1, "predictions_without_tokens": 1,
                                     "references_without_tokens": 1}
    assert "1 prediction(s) are blank" in caplog.text and "--rouge-tokenizer unicode" in caplog.text
    assert default["settings"]["tokenizer"] == "default"
    assert default["settings"]["rougeLsum_sentence_split"].startswith("regex")
    unicode = per_example_scores([emoji, chinese], [[emoji], ["电影在3点"]], "unicode")["first_reference"]["rouge1"]
    assert unicode[0] == 1.0 and 0 < unicode[1] < 1


def test_unicode_tokenizer_equals_the_default_on_ascii_text():
    from rouge_score.tokenizers import DefaultTokenizer

    texts = [PREDICTION, *REFERENCES, "It's 9:30 -- the #Person1#'s e-mail (re: $20.5 refund) isn't here_yet!"]
    for text in texts:
        assert UnicodeTokenizer().tokenize(text) == DefaultTokenizer(use_stemmer=True).tokenize(text)
    assert UnicodeTokenizer().tokenize("Café Москва 会议 🎉") == ["café", "москва", "会", "议", "🎉"]


def test_rouge_matches_spell_out_rouge_scores():
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    pairs = [("Tom gives Anna a pen. Anna signs the forms.", "Tom lends Anna his pen. She signs the form."),
             ("the cat sat on the mat", "the the the cat"), ("a b c d", "d c b a"), ("x", "")]
    for reference, candidate in pairs:
        ours, theirs = rouge_matches(reference, candidate), scorer.score(reference, candidate)
        for t in ("rouge1", "rouge2", "rougeL"):
            assert ours[t]["f1"] == pytest.approx(theirs[t].fmeasure)
            assert ours[t]["precision"] == pytest.approx(theirs[t].precision)
    example = rouge_matches(*pairs[0])
    assert example["rouge2 shared"] == ["sign the", "the form"] and len(example["rougeL LCS"]) == 6
