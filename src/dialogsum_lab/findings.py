"""What a comparison shows about details and baselines, in numbers and in words, computed from the systems' own files.

A model is said to summarise better than the baselines only when it beats the best of them on ROUGE *and* on
the details it keeps (and, where the data records facts, on summaries fully correct): ROUGE alone rewards the
shape of a summary, which a lookup of the nearest training summary has too (`baselines.py`, `details.py`).
"""

import numpy as np
import pandas as pd

from dialogsum_lab.details import DETAIL_COLUMNS, detail_rows, per_example
from dialogsum_lab.metrics import BOOTSTRAP_SAMPLES, PRIMARY_VIEW, paired_bootstrap, per_example_scores

HIGHER_IS_BETTER = {"supported_recall": True, "unsupported": False, "fact_recall": True, "wrong": False,
                    "fully_correct": True}


def is_baseline(system: dict) -> bool:
    """A system nobody trained to summarise from examples: lead, longest, retrieval (`baselines.py`)."""
    return "baseline" in system["metrics"]


def detail_values(system: dict) -> dict[str, np.ndarray]:
    """Per-summary values of every detail view: as the evaluation recorded them, or (for an evaluation made before
    the view existed) computed now from its predictions, facts aside."""
    rows = system["predictions"]
    if all("details" in r for r in rows):
        return per_example([r["details"] for r in rows])
    return per_example(detail_rows([r["prediction"] for r in rows], [r["dialogue"] for r in rows],
                                   [r["references"] for r in rows]))


def details_frame(systems: list[dict]) -> pd.DataFrame:
    """One row per system: each detail view's mean (NaN where the view does not apply), as shares in [0, 1]."""
    rows = []
    for system in systems:
        values = detail_values(system)
        rows.append({"system": system["name"], **{k: float(np.nanmean(values[k])) if k in values and
                                                   (~np.isnan(values[k])).any() else float("nan")
                                                   for k in DETAIL_COLUMNS}})
    return pd.DataFrame(rows)


def _paired(a: np.ndarray, b: np.ndarray, samples: int) -> dict | None:
    both = ~(np.isnan(a) | np.isnan(b))
    return paired_bootstrap(a[both], b[both], samples) if both.any() else None


def _said(test: dict, higher_is_better: bool = True) -> str:
    """How b stands to a, by whether the paired interval of b - a excludes 0."""
    if test["ci_low"] > 0:
        return "above" if higher_is_better else "more"
    if test["ci_high"] < 0:
        return "below" if higher_is_better else "fewer"
    return "level"


def against_baselines(systems: list[dict], samples: int = BOOTSTRAP_SAMPLES, rouge: str = "rouge1") -> list[str]:
    """Each trained or zero-shot system against the best baseline (highest mean ROUGE): the ROUGE difference and
    every detail view with paired 95% intervals, and the verdict in words."""
    baselines = [s for s in systems if is_baseline(s)]
    if not baselines:
        return []
    scores = {id(s): per_example_scores([p["prediction"] for p in s["predictions"]],
                                        [p["references"] for p in s["predictions"]],
                                        s["metrics"]["settings"].get("tokenizer", "default"))[PRIMARY_VIEW][rouge]
              for s in systems}  # compare has checked that every system was scored with one tokenizer
    details = {id(s): detail_values(s) for s in systems}
    best = max(baselines, key=lambda s: scores[id(s)].mean())
    lines = [f"Against the best baseline, {best['name']} (ROUGE-{rouge.removeprefix('rouge')} "
             f"{scores[id(best)].mean():.3f}; paired 95% intervals, b - a):", ""]
    for system in (s for s in systems if not is_baseline(s)):
        lines.append(_verdict(system, best, scores, details, samples, rouge))
    return lines


def _verdict(system: dict, best: dict, scores: dict, details: dict, samples: int, rouge: str) -> str:
    test = paired_bootstrap(scores[id(best)], scores[id(system)], samples)
    parts = [f"ROUGE {_said(test)} ({test['difference'] * 100:+.1f} points [{test['ci_low'] * 100:+.1f}, "
             f"{test['ci_high'] * 100:+.1f}])"]
    wins = [test["ci_low"] > 0]
    for key, label in DETAIL_COLUMNS.items():
        mine, theirs = details[id(system)].get(key), details[id(best)].get(key)
        if mine is None or theirs is None or (paired := _paired(theirs, mine, samples)) is None:
            continue
        better = paired["ci_low"] > 0 if HIGHER_IS_BETTER[key] else paired["ci_high"] < 0
        if key in ("supported_recall", "fully_correct"):
            wins.append(better)
        parts.append(f"{label} {np.nanmean(mine):.0%} vs {np.nanmean(theirs):.0%} "
                     f"({_said(paired, HIGHER_IS_BETTER[key])})")
    verdict = ("beats it on ROUGE and on details: it reads the dialogue" if all(wins) else
               "does not beat it on details, so its ROUGE does not show that it reads the dialogue" if wins[0] else
               "does not beat it")
    return f"- **{system['name']}** {verdict}: {'; '.join(parts)}."
