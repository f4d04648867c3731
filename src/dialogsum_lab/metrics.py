"""ROUGE with multi-reference views and bootstrap confidence intervals.

Built on `rouge_score` with the Porter stemmer, which is what `evaluate`'s
"rouge" wraps (`evaluate.load` of that one needs the Hub; `ROUGE_METRIC` is
this project's own `evaluate` module, loadable offline). For rougeLsum,
sentences are put on their own lines first, as rouge_score expects; without
that, rougeLsum equals rougeL, which is why the lab's two columns match.

DialogSum's test set has three human summaries per dialogue. Four views:
- `first_reference`: against `summary1` only (what DialogSum's published
  BART baseline reports);
- `mean_over_references`: each reference scored alone, then averaged (what the
  lab's 1,500-row test split, one row per reference, computes for R1/R2/RL);
- `best_reference`: the reference with the best F1, per example (rouge_score's
  `score_multi`; ROUGE-1.5.5's `-f B` picks the best *recall* instead);
- `course_lab`: the course lab's own numbers: `mean_over_references`, but
  rougeLsum without sentence splitting (so it equals rougeL), as the lab
  scored it. Put our figures beside the course's only in this view.
ROUGE-1.5.5's default `-f A` pools the n-gram counts of all references before
dividing; no view here reproduces it exactly.

rouge_score's default tokenizer keeps only ASCII letters and digits, which is
what published English figures use, but it turns an emoji or Chinese summary
into nothing. Such texts are counted and warned about; the `unicode` tokenizer
scores them (and gives the same tokens as the default on ASCII text).
"""

import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import regex
from nltk.stem import porter
from rouge_score import rouge_scorer, tokenizers

from dialogsum_lab.config import BOOTSTRAP_SAMPLES, ROUGE_TOKENIZERS, VIEWS

log = logging.getLogger(__name__)

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
PRIMARY_VIEW = "mean_over_references"  # shown by default
COURSE_VIEW = "course_lab"  # the view the course's published numbers were computed in
# This project's scorer as an `evaluate` metric module: evaluate.load(ROUGE_METRIC) works offline.
ROUGE_METRIC = str(Path(__file__).with_name("evaluate_rouge.py"))
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
SENTENCE_SPLIT = "regex: a new sentence after . ! or ? and whitespace"
# Each Chinese/Japanese character and each emoji or other symbol is a token; other letters, digits and marks
# form words. On ASCII text this finds exactly rouge_score's tokens ([a-z0-9]+ runs).
_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}"
UNICODE_TOKEN = regex.compile(rf"[{_CJK}]|\p{{So}}|(?:(?![{_CJK}])[\p{{L}}\p{{N}}\p{{M}}])+")


class UnicodeTokenizer(tokenizers.Tokenizer):
    """rouge_score's tokenizer (lower case, Porter stems for words over 3 characters) for any script."""

    def __init__(self, use_stemmer: bool = True) -> None:
        self._stemmer = porter.PorterStemmer() if use_stemmer else None

    def tokenize(self, text: str) -> list[str]:
        tokens = UNICODE_TOKEN.findall(text.lower())
        if self._stemmer:
            tokens = [self._stemmer.stem(t) if len(t) > 3 else t for t in tokens]
        return tokens


def make_tokenizer(name: str = "default") -> tokenizers.Tokenizer:
    """The tokenizer ROUGE compares words with: `default` (rouge_score's, ASCII) or `unicode`."""
    if name not in ROUGE_TOKENIZERS:
        raise ValueError(f"unknown ROUGE tokenizer {name!r}; choose one of {', '.join(ROUGE_TOKENIZERS)}")
    return tokenizers.DefaultTokenizer(use_stemmer=True) if name == "default" else UnicodeTokenizer()


def rouge_matches(reference: str, candidate: str, tokenizer: str = "default") -> dict:
    """What ROUGE-1, -2 and -L count for one pair, spelled out: the shared unigrams and bigrams (clipped counts),
    the longest common subsequence, and each score's precision, recall and F1 from those counts. Teaching aid;
    the scores equal rouge_score's."""
    words = make_tokenizer(tokenizer)
    ref, cand = words.tokenize(reference), words.tokenize(candidate)
    result = {"reference tokens": ref, "candidate tokens": cand}
    for n, name in ((1, "rouge1"), (2, "rouge2")):
        ref_grams, cand_grams = (Counter(zip(*(t[i:] for i in range(n)), strict=False)) for t in (ref, cand))
        shared = ref_grams & cand_grams
        result[f"{name} shared"] = [" ".join(g) for g in shared.elements()]
        result[name] = _prf(sum(shared.values()), sum(cand_grams.values()), sum(ref_grams.values()))
    table = [[0] * (len(cand) + 1) for _ in range(len(ref) + 1)]
    for i, r in enumerate(ref):
        for j, c in enumerate(cand):
            table[i + 1][j + 1] = table[i][j] + 1 if r == c else max(table[i][j + 1], table[i + 1][j])
    lcs, i, j = [], len(ref), len(cand)
    while i and j:
        if ref[i - 1] == cand[j - 1]:
            lcs.append(ref[i - 1])
            i, j = i - 1, j - 1
        elif table[i - 1][j] >= table[i][j - 1]:
            i -= 1
        else:
            j -= 1
    result["rougeL LCS"] = lcs[::-1]
    result["rougeL"] = _prf(len(lcs), len(cand), len(ref))
    return result


def _prf(matches: int, candidate: int, reference: int) -> dict:
    precision, recall = matches / candidate if candidate else 0.0, matches / reference if reference else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def split_sentences(text: str) -> str:
    """One sentence a line, for rougeLsum (a regex split: no NLTK data download needed)."""
    return "\n".join(s for s in SENTENCE_END.split(text.strip()) if s)


def per_example_scores(predictions: Sequence[str], references: Sequence[Sequence[str]],
                       tokenizer: str = "default") -> dict:
    """F1 per example: {view: {rouge_type: array of shape (n,)}}."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} reference lists")
    words = make_tokenizer(tokenizer)
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), tokenizer=words)
    unsplit = rouge_scorer.RougeScorer(["rougeLsum"], tokenizer=words)  # the lab's rougeLsum: one "sentence"
    n = len(predictions)
    views = {view: {t: np.zeros(n) for t in ROUGE_TYPES} for view in VIEWS}
    for i, (prediction, refs) in enumerate(zip(predictions, references, strict=True)):
        if not refs:
            raise ValueError(f"example {i} has no reference summary")
        scores = [scorer.score(split_sentences(r), split_sentences(prediction)) for r in refs]
        for t in ROUGE_TYPES:
            f1 = np.array([s[t].fmeasure for s in scores])
            views["first_reference"][t][i] = f1[0]
            views["mean_over_references"][t][i] = views["course_lab"][t][i] = f1.mean()
            views["best_reference"][t][i] = f1.max()
        views["course_lab"]["rougeLsum"][i] = np.mean([unsplit.score(r, prediction)["rougeLsum"].fmeasure
                                                       for r in refs])
    return views


def scored_against(ids: Sequence[str], references: Sequence[Sequence[str]]) -> dict:
    """What a score was computed against: the dialogues and their references, as fingerprints. Two systems are
    comparable only when both fingerprints agree (`reporting.check_comparable`)."""
    def digest(obj) -> str:
        return hashlib.sha256(json.dumps(obj, ensure_ascii=False).encode()).hexdigest()[:16]

    return {"n": len(ids), "ids_sha256": digest(list(ids)),
            "references_sha256": digest([[i, list(r)] for i, r in zip(ids, references, strict=True)])}


def bootstrap_ci(scores: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0,
                 confidence: float = 0.95) -> tuple:
    """Percentile bootstrap interval for the mean (resampling examples with replacement)."""
    if len(scores) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = scores[rng.integers(0, len(scores), size=(samples, len(scores)))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def paired_bootstrap(a: np.ndarray, b: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0,
                     confidence: float = 0.95) -> dict:
    """Is system b better than a on the same examples? Mean difference, its interval, and a p-value.

    The p-value is the share of resamples in which the difference has the other
    sign (two-sided), the paired bootstrap test of Koehn (2004).
    """
    diff = np.asarray(b) - np.asarray(a)
    low, high = bootstrap_ci(diff, samples, seed, confidence)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(samples, len(diff)))].mean(axis=1)
    p = 2 * min((means <= 0).mean(), (means >= 0).mean())
    return {"difference": float(diff.mean()), "ci_low": low, "ci_high": high, "p_value": float(min(p, 1.0)),
            "significant": bool(low > 0 or high < 0), "samples": samples}


def format_p(p: float, samples: int) -> str:
    """A bootstrap p-value as text: below its resolution (no resample on the other side) it is `< 1/B`, not 0."""
    if p <= 0:
        return f"< {1 / samples:.3g}"
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def text_check(predictions: Sequence[str], references: Sequence[Sequence[str]], tokenizer: str = "default") -> dict:
    """Count texts ROUGE cannot see: blank predictions, and non-blank texts the tokenizer turns into nothing."""
    tokenize = make_tokenizer(tokenizer).tokenize

    def emptied(texts: Sequence[str]) -> int:
        return sum(bool(t.strip()) and not tokenize(t) for t in texts)

    return {"blank_predictions": sum(not p.strip() for p in predictions),
            "predictions_without_tokens": emptied(predictions),
            "references_without_tokens": emptied([r for refs in references for r in refs])}


def warn_about_texts(check: dict, tokenizer: str) -> None:
    """One warning line for each kind of text that scores 0 (or 1) for reasons other than its content."""
    if check["blank_predictions"]:
        log.warning("%d prediction(s) are blank and score 0. Check the model's output (predictions.jsonl).",
                    check["blank_predictions"])
    hidden = check["predictions_without_tokens"] + check["references_without_tokens"]
    if hidden:
        fix = ("pass --rouge-tokenizer unicode to score words in any script" if tokenizer == "default"
               else "they hold only punctuation")
        log.warning("%d prediction(s) and %d reference(s) have no word the %s ROUGE tokenizer keeps, so they are "
                    "scored as empty; %s.", check["predictions_without_tokens"], check["references_without_tokens"],
                    tokenizer, fix)


def compute_rouge(predictions: Sequence[str], references: Sequence[Sequence[str]],
                  bootstrap_samples: int = BOOTSTRAP_SAMPLES, seed: int = 0, confidence: float = 0.95,
                  tokenizer: str = "default") -> dict:
    """Mean F1 with a bootstrap interval for every view and ROUGE type: the body of `metrics.json`."""
    check = text_check(predictions, references, tokenizer)
    warn_about_texts(check, tokenizer)
    per_example = per_example_scores(predictions, references, tokenizer)
    views = {view: {t: {"mean": float(s.mean()) if len(s) else float("nan"),
                        **dict(zip(("ci_low", "ci_high"), bootstrap_ci(s, bootstrap_samples, seed, confidence),
                                   strict=True))}
                    for t, s in per_example[view].items()}
             for view in VIEWS}
    counts = [len(r) for r in references]
    return {
        "n_examples": len(predictions),
        "references_per_example": {"min": min(counts, default=0), "max": max(counts, default=0),
                                   "mean": float(np.mean(counts)) if counts else 0.0},
        "primary_view": PRIMARY_VIEW,
        "rouge": views,
        "text_check": check,
        "settings": {"use_stemmer": True, "tokenizer": tokenizer, "rougeLsum_sentence_split": SENTENCE_SPLIT,
                     "bootstrap_samples": bootstrap_samples, "confidence": confidence, "seed": seed,
                     "scores": "F1 in [0, 1]"},
    }
