"""Detail consistency: does a summary keep what *this* dialogue says, and add nothing from elsewhere?

ROUGE counts shared words, so a summary in the right shape carrying another dialogue's details scores well (on
the miniature, the summary of the most similar training dialogue scored as high as full fine-tuning). These
views look at the details alone. They are model-free (nothing to download), so they run offline and on any data:

- `supported_recall`: of the content words (stopwords aside, numbers included) that every reference keeps and
  that occur in the dialogue, the share the summary reproduces, averaged over the dialogues that have any (with
  one reference: that reference's). Words are compared lower-cased and Porter-stemmed, as ROUGE compares them,
  and number words as digits ("twenty-five" = "25").
- `unsupported`: the share of summaries naming a detail that is in neither the dialogue nor any reference: a
  number (digits or a number word: times, prices, counts) or a capitalised name inside a sentence. The words are
  listed per summary in predictions.jsonl, so a reader can check each. A wrong lower-case thing ("a green belt")
  is no name: on data that records its facts, the fact view below sees it.
- `facts`, for data whose rows carry `facts` (the miniature's do: every slot its generator filled, with the pool
  it was drawn from). Key facts are the ones every reference states. `fact_recall`: the share of key facts the
  summary states; `wrong`: the share of summaries stating another value of a fact's pool that is none of this
  dialogue's facts (a name, restaurant or garment from elsewhere); `fully_correct`: every key fact, none wrong.

Each is a mean over dialogues with a bootstrap interval, like ROUGE's.
"""

import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
from nltk.stem import porter

from dialogsum_lab.config import BOOTSTRAP_SAMPLES
from dialogsum_lab.metrics import bootstrap_ci

SPEAKER_TAG = re.compile(r"#Person\d+#")
WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?|\d+(?:[.,:]\d+)*")
# A sentence starts at the text's start, a line's, or after . ! ? : ; (but not after the titles Mr. Mrs. Ms. Dr. St.)
SENTENCE_START = re.compile(r"(?:^|(?<!\bMr)(?<!\bMs)(?<!\bDr)(?<!\bSt)(?<!\bMrs)[.!?:;]\s+|\n)\W*$")
UNITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
NUMBER_WORDS = {w: str(i) for i, w in enumerate(UNITS)} | {w: str(20 + 10 * i) for i, w in enumerate(TENS)} | {
    "hundred": "100", "thousand": "1000"}
COMPOUND_NUMBER = re.compile(rf"\b({'|'.join(TENS)})[- ]({'|'.join(UNITS[1:10])})\b", re.IGNORECASE)
TITLES = ("mr", "mrs", "ms", "dr", "st")  # before a name, not names
ARTICLE = re.compile(r"^(?:a|an|the)\s+")
METRIC_KEYS = {"supported_recall": "details kept", "unsupported": "unsupported details"}
FACT_KEYS = {"fact_recall": "key facts stated", "wrong": "summaries with a wrong fact",
             "fully_correct": "fully correct summaries"}
DETAIL_COLUMNS = METRIC_KEYS | FACT_KEYS  # every view, in the order tables show them


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(w for w in ENGLISH_STOP_WORDS if w not in NUMBER_WORDS) | {"person", *TITLES}


_STEMMER = porter.PorterStemmer()


def _numbers_as_digits(text: str) -> str:
    def compound(match: re.Match) -> str:
        return str(int(NUMBER_WORDS[match[1].lower()]) + int(NUMBER_WORDS[match[2].lower()]))

    return COMPOUND_NUMBER.sub(compound, text)


def _norm(word: str) -> str:
    lower = word.lower()
    return NUMBER_WORDS.get(lower) or _STEMMER.stem(lower)


def _tokens(text: str) -> list[str]:
    return WORD.findall(_numbers_as_digits(SPEAKER_TAG.sub(" ", text)))


def words(text: str) -> set[str]:
    """Every word of `text` as compared here: lower case, stemmed, number words as digits, speaker tags gone."""
    return {_norm(w) for w in _tokens(text)}


def content_words(text: str) -> set[str]:
    """The words of `text` that carry content: not a stopword (numbers are content)."""
    stop = _stopwords()  # number words are not among them
    return {_norm(w) for w in _tokens(text) if w.lower() not in stop}


def detail_words(text: str) -> list[str]:
    """The words of `text` that name a detail: numbers (digits or number words) and capitalised names inside a
    sentence (a capital at a sentence's start says nothing), as written."""
    text = _numbers_as_digits(SPEAKER_TAG.sub(" ", text))
    found = []
    for match in WORD.finditer(text):
        word = match.group()
        is_number = word[0].isdigit() or word.lower() in NUMBER_WORDS
        is_name = (word[0].isupper() and word.lower() not in _stopwords()
                   and not SENTENCE_START.search(text[:match.start()]))
        if is_number or is_name:
            found.append(word)
    return list(dict.fromkeys(found))


def supported_recall(summary: str, dialogue: str, references: Sequence[str]) -> float | None:
    """The share of the details every reference keeps (content words that occur in the dialogue) that the summary
    has too; None when the references agree on none (nothing to recall)."""
    kept = content_words(dialogue).intersection(*(content_words(r) for r in references))
    return len(kept & words(summary)) / len(kept) if kept else None


def unsupported(summary: str, dialogue: str, references: Sequence[str]) -> list[str]:
    """The summary's detail words that neither the dialogue nor any reference contains."""
    known = words(dialogue).union(*(words(r) for r in references))
    return [w for w in detail_words(summary) if _norm(w) not in known]


def _phrase(value: str) -> str:
    return ARTICLE.sub("", " ".join(value.lower().split()))


def _find(text: str, phrases: set[str]) -> list[str]:
    """The phrases stated in `text`, longest first where they overlap ("half past six" is not also "six")."""
    if not phrases:
        return []
    pattern = _pattern(tuple(sorted(phrases, key=lambda p: (-len(p), p))))
    return [m.group(1) for m in pattern.finditer(" ".join(text.lower().split()))]


@lru_cache(maxsize=256)
def _pattern(phrases: tuple[str, ...]) -> re.Pattern:
    return re.compile(r"(?<![a-z0-9-])(" + "|".join(map(re.escape, phrases)) + r")(?![a-z0-9-])")


def fact_check(summary: str, facts: Sequence[dict], references: Sequence[str],
               pools: dict[str, Sequence[str]]) -> dict:
    """The key facts (stated by every reference), those the summary misses, and the values it states that belong
    to a fact's pool but to none of this dialogue's facts."""
    own = {_phrase(f["value"]) for f in facts}
    key = [_phrase(f["value"]) for f in facts
           if all(_phrase(f["value"]) in _find(r, {_phrase(f["value"])}) for r in references)]
    key = list(dict.fromkeys(key))
    others = {_phrase(v) for f in facts for v in pools.get(f.get("pool") or "", ())} - own
    stated = _find(summary, own | others)
    return {"key": key, "missed": [k for k in key if k not in stated],
            "wrong": list(dict.fromkeys(v for v in stated if v in others))}


def example_details(summary: str, dialogue: str, references: Sequence[str], facts: Sequence[dict] | None = None,
                    pools: dict[str, Sequence[str]] | None = None) -> dict:
    """Everything this module measures for one summary, as predictions.jsonl keeps it."""
    made = {"supported_recall": supported_recall(summary, dialogue, references),
            "unsupported": unsupported(summary, dialogue, references)}
    if facts:
        made["facts"] = fact_check(summary, facts, references, pools or {})
    return made


def _mean_ci(values: Sequence[float], samples: int, seed: int) -> dict:
    array = np.asarray(values, dtype=float)
    low, high = bootstrap_ci(array, samples, seed)
    return {"mean": float(array.mean()) if len(array) else float("nan"), "ci_low": low, "ci_high": high,
            "n": len(array)}


def per_example(rows: Sequence[dict]) -> dict[str, np.ndarray]:
    """Per-summary values of each view (the paired tests' input), from `example_details` results; a summary with
    nothing to recall counts as NaN in `supported_recall`."""
    values = {"supported_recall": np.array([np.nan if r["supported_recall"] is None else r["supported_recall"]
                                            for r in rows], dtype=float),
              "unsupported": np.array([float(bool(r["unsupported"])) for r in rows])}
    checked = [r["facts"] for r in rows if "facts" in r]
    if checked and len(checked) == len(rows):
        values["fact_recall"] = np.array([1 - len(f["missed"]) / len(f["key"]) if f["key"] else np.nan
                                          for f in checked])
        values["wrong"] = np.array([float(bool(f["wrong"])) for f in checked])
        values["fully_correct"] = np.array([float(not f["missed"] and not f["wrong"]) for f in checked])
    return values


def summarise(rows: Sequence[dict], samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> dict:
    """The `details` block of metrics.json: each view's mean with its bootstrap interval."""
    values = per_example(rows)
    block = {name: _mean_ci(v[~np.isnan(v)], samples, seed) for name, v in values.items()}
    block["definition"] = "dialogsum_lab.details (docstring): content-word recall, unsupported numbers and names" + (
        "; facts recorded by the data" if "fact_recall" in values else "")
    return block


def detail_rows(predictions: Sequence[str], dialogues: Sequence[str], references: Sequence[Sequence[str]],
                facts: Sequence[Sequence[dict]] | None = None,
                pools: dict[str, Sequence[str]] | None = None) -> list[dict]:
    """`example_details` for every summary, in order."""
    facts = facts or [()] * len(predictions)
    return [example_details(p, d, r, f, pools)
            for p, d, r, f in zip(predictions, dialogues, references, facts, strict=True)]
