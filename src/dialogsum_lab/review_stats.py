"""What human judgments say: win rates with bootstrap intervals, a Bradley-Terry ranking, how far raters
agree with each other (Cohen's and Fleiss' kappa, Krippendorff's alpha, with how many judgments overlap),
and how often they agree with ROUGE. Plain functions over the store's rows; the web app, the notebook and
`review-report` show the same numbers.

A judgment is read in the pair's canonical order (its two systems sorted by name), never the order shown,
so that A/B position does not enter any statistic. A tie counts half a win to each side, in win rates and
in the Bradley-Terry fit (Hunter's MM algorithm, 2004).
"""

from collections import Counter, defaultdict
from itertools import combinations

import numpy as np
import pandas as pd

from dialogsum_lab.config import BOOTSTRAP_SAMPLES


def preferences(judgments: list[dict]) -> list[dict]:
    """Each judgment as (rater, dialogue, first, second, outcome): outcome 1 when `first` won, 0 when `second`
    did, 0.5 for a tie; `first`/`second` are the pair's canonical order."""
    rows = []
    for j in judgments:
        winner = {"A": j["shown_a"], "B": j["shown_b"]}.get(j["answer"])
        rows.append({"rater": j["rater"], "dialogue": j["dialogue_id"], "first": j["system_1"],
                     "second": j["system_2"], "outcome": 0.5 if winner is None else float(winner == j["system_1"])})
    return rows


def win_rates(prefs: list[dict], samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> pd.DataFrame:
    """Per pair: judgments, wins each way, ties, and `first`'s win rate (ties half) with a 95% bootstrap
    interval over the pair's judgments."""
    by_pair = defaultdict(list)
    for p in prefs:
        by_pair[(p["first"], p["second"])].append(p["outcome"])
    rng = np.random.default_rng(seed)
    rows = []
    for (first, second), outcomes in sorted(by_pair.items()):
        x = np.array(outcomes)
        means = x[rng.integers(0, len(x), (samples, len(x)))].mean(axis=1)
        rows.append({"first": first, "second": second, "judgments": len(x), "first wins": int((x == 1).sum()),
                     "second wins": int((x == 0).sum()), "ties": int((x == 0.5).sum()),
                     "first win rate": float(x.mean()), "ci_low": float(np.quantile(means, 0.025)),
                     "ci_high": float(np.quantile(means, 0.975))})
    return pd.DataFrame(rows, columns=["first", "second", "judgments", "first wins", "second wins", "ties",
                                       "first win rate", "ci_low", "ci_high"])


def bradley_terry(prefs: list[dict], iterations: int = 10_000, tolerance: float = 1e-12) -> dict[str, float]:
    """Bradley-Terry strengths by maximum likelihood (MM updates), scaled to sum to 1: a system's strength s
    beats another's t with probability s / (s + t). A system that never won gets 0."""
    names = sorted({p["first"] for p in prefs} | {p["second"] for p in prefs})
    index = {n: i for i, n in enumerate(names)}
    wins = np.zeros((len(names), len(names)))
    for p in prefs:
        i, j = index[p["first"]], index[p["second"]]
        wins[i, j] += p["outcome"]
        wins[j, i] += 1 - p["outcome"]
    games = wins + wins.T
    strength = np.ones(len(names)) / len(names)
    for _ in range(iterations):
        pair_sums = strength[:, None] + strength[None, :]
        denominator = np.where(games > 0, games / np.where(pair_sums > 0, pair_sums, 1), 0).sum(axis=1)
        updated = np.where(denominator > 0, wins.sum(axis=1) / np.where(denominator > 0, denominator, 1), 0)
        updated /= updated.sum() or 1
        if np.abs(updated - strength).max() < tolerance:
            strength = updated
            break
        strength = updated
    return dict(zip(names, strength.tolist(), strict=True))


def ranking(prefs: list[dict], samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> pd.DataFrame:
    """Systems by Bradley-Terry strength, with 95% bootstrap intervals (judgments resampled)."""
    point = bradley_terry(prefs)
    rng = np.random.default_rng(seed)
    draws = defaultdict(list)
    for _ in range(samples):
        sample = [prefs[i] for i in rng.integers(0, len(prefs), len(prefs))]
        for name, value in bradley_terry(sample, iterations=500, tolerance=1e-9).items():
            draws[name].append(value)
    rows = [{"system": n, "strength": s, "ci_low": float(np.quantile(draws[n] or [s], 0.025)),
             "ci_high": float(np.quantile(draws[n] or [s], 0.975))} for n, s in point.items()]
    frame = pd.DataFrame(rows, columns=["system", "strength", "ci_low", "ci_high"])
    return frame.sort_values("strength", ascending=False, ignore_index=True).assign(rank=lambda f: f.index + 1)


def cohen_kappa(a: list, b: list) -> float:
    """Cohen's kappa of two raters' labels on the same items: (p_o - p_e) / (1 - p_e)."""
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb[k] for k in set(ca) | set(cb)) / n**2
    return 1.0 if expected == 1 else (observed - expected) / (1 - expected)


def fleiss_kappa(table: list[list[int]]) -> float:
    """Fleiss' kappa of an items x categories table of counts, every item rated by the same number of raters."""
    counts = np.asarray(table, dtype=float)
    raters = counts.sum(axis=1)
    if len(set(raters)) != 1:
        raise ValueError("Fleiss' kappa needs the same number of raters for every item")
    m = raters[0]
    p_item = ((counts**2).sum(axis=1) - m) / (m * (m - 1))
    p_category = counts.sum(axis=0) / counts.sum()
    expected = (p_category**2).sum()
    return 1.0 if expected == 1 else float((p_item.mean() - expected) / (1 - expected))


def krippendorff_alpha(units: list[list]) -> float:
    """Krippendorff's alpha for nominal values; each unit lists the values its raters gave (any number, units
    with fewer than two values do not count)."""
    coincidences = Counter()
    for values in units:
        m = len(values)
        if m < 2:
            continue
        for c, k in ((c, k) for i, c in enumerate(values) for j, k in enumerate(values) if i != j):
            coincidences[(c, k)] += 1 / (m - 1)
    totals = Counter()
    for (c, _), weight in coincidences.items():
        totals[c] += weight
    n = sum(totals.values())
    disagreeing = sum(w for (c, k), w in coincidences.items() if c != k)
    expected = sum(totals[c] * totals[k] for c in totals for k in totals if c != k)
    return 1.0 if expected == 0 else 1 - (n - 1) * disagreeing / expected


def agreement(prefs: list[dict]) -> dict:
    """How far raters agree on the tasks two or more of them judged: Krippendorff's alpha over all of them,
    Fleiss' kappa when every such task has the same number of raters, Cohen's kappa for the two raters who
    share the most tasks; with the numbers of tasks and judgments that overlap."""
    units = defaultdict(dict)
    for p in prefs:
        units[(p["dialogue"], p["first"], p["second"])][p["rater"]] = p["outcome"]
    shared = [u for u in units.values() if len(u) >= 2]
    result = {"overlapping tasks": len(shared), "overlapping judgments": sum(len(u) for u in shared),
              "krippendorff_alpha": None, "fleiss_kappa": None, "cohen_kappa": None, "cohen_raters": None}
    if not shared:
        return result
    result["krippendorff_alpha"] = krippendorff_alpha([list(u.values()) for u in shared])
    if len({len(u) for u in shared}) == 1:
        labels = (0.0, 0.5, 1.0)
        result["fleiss_kappa"] = fleiss_kappa([[list(u.values()).count(v) for v in labels] for u in shared])
    pairs = Counter(pair for u in shared for pair in combinations(sorted(u), 2))
    (one, two), _ = pairs.most_common(1)[0]
    both = [u for u in shared if one in u and two in u]
    result["cohen_kappa"] = cohen_kappa([u[one] for u in both], [u[two] for u in both])
    result["cohen_raters"] = f"{len(both)} tasks judged by both of two raters"
    return result


def rouge_agreement(prefs: list[dict], rouge: dict[str, dict[str, float]]) -> pd.DataFrame:
    """Per pair of systems with ROUGE scores (`rouge[system][dialogue]`), how often a human's preference is
    ROUGE's: among judgments that are not ties, on dialogues where the two ROUGE scores differ."""
    counted = defaultdict(lambda: [0, 0])
    for p in prefs:
        if p["outcome"] == 0.5 or p["first"] not in rouge or p["second"] not in rouge:
            continue
        difference = rouge[p["first"]][p["dialogue"]] - rouge[p["second"]][p["dialogue"]]
        if difference:
            counted[(p["first"], p["second"])][0] += (difference > 0) == (p["outcome"] == 1)
            counted[(p["first"], p["second"])][1] += 1
    return pd.DataFrame([{"first": a, "second": b, "judgments compared": n, "agree with ROUGE-L": agree / n}
                         for (a, b), (agree, n) in sorted(counted.items())],
                        columns=["first", "second", "judgments compared", "agree with ROUGE-L"])


def plot_results(wins: pd.DataFrame, ranked: pd.DataFrame):
    """Left: each pair's win rate with its interval; right: the Bradley-Terry ranking with intervals. A bare
    `Figure` (no pyplot): the web app and a notebook show it without any backend being switched."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.6))
    left, right = fig.subplots(1, 2)
    labels = [f"{a} vs {b}" for a, b in zip(wins["first"], wins["second"], strict=True)]
    rates = wins["first win rate"].to_numpy()
    left.barh(labels, rates, xerr=[rates - wins["ci_low"], wins["ci_high"] - rates], capsize=3)
    left.axvline(0.5, color="black", linestyle="--", linewidth=1)
    left.set(xlim=(0, 1), xlabel="first system's win rate (ties half)", title="Pairwise preference")
    strengths = ranked["strength"].to_numpy()
    right.bar(ranked["system"], strengths, yerr=[strengths - ranked["ci_low"], ranked["ci_high"] - strengths],
              capsize=3)
    right.set(ylabel="Bradley-Terry strength", title="Ranking (95% bootstrap)")
    right.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    return fig
