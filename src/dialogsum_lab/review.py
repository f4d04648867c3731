"""Human evaluation of evaluated runs: what is rated (each run's summaries of the dialogues they were all scored
on, and the human reference), the report of what raters said, and summaries made on demand for the app's
Try tab. The web app (`review_app.py`), the notebook widgets (`review_widgets.py`) and `review-report` share
this; the judgments live in `review_store.py`, the statistics in `review_stats.py`.
"""

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from dialogsum_lab.config import BOOTSTRAP_SAMPLES, MAX_DIALOGUE_CHARACTERS, REVIEW_DIALOGUES
from dialogsum_lab.details import DETAIL_COLUMNS
from dialogsum_lab.errors import UserError
from dialogsum_lab.findings import detail_values
from dialogsum_lab.metrics import PRIMARY_VIEW, per_example_scores
from dialogsum_lab.reporting import check_comparable, load_system, scored_folder
from dialogsum_lab.review_stats import agreement, preferences, ranking, rouge_agreement, win_rates
from dialogsum_lab.review_store import ReviewStore

REFERENCE = "human reference"  # the first human summary, rated like a system


@dataclass
class Review:
    """What one review rates: systems by name, each {dialogue id: summary}; the dialogues; each model's
    per-dialogue ROUGE-L (for the human-vs-ROUGE agreement); how each model was scored (its `metrics.json`:
    which model and adapter, prompt and lengths, for Try)."""

    systems: dict[str, dict[str, str]]
    dialogues: dict[str, str]
    rouge: dict[str, dict[str, float]]
    scored: dict[str, dict]
    details: dict[str, dict[str, float]] | None = None  # each model's detail view over the rated dialogues

    def store(self, db: str | Path) -> ReviewStore:
        return ReviewStore(db, self.systems, self.dialogues, self.rouge, details=self.details)


def load_review(runs: list[str | Path], dialogues: int | None = REVIEW_DIALOGUES, reference: bool = True) -> Review:
    """The first `dialogues` dialogues every run was evaluated on (refused unless they were scored on the same
    dialogues and references), each run's summaries under its folder's name, and the human reference."""
    if dialogues is not None and dialogues < 1:
        raise UserError(f"--dialogues must be at least 1 (got {dialogues}).")
    if len(runs) + reference < 2:
        raise UserError("a review compares at least two systems: give two runs, or one run and keep the human "
                        "reference.")
    loaded = [load_system(run) for run in runs]
    check_comparable(loaded)
    names = _names([Path(r) for r in runs])
    rows = loaded[0]["predictions"][:dialogues]
    ids = [r["id"] for r in rows]
    systems = {name: {p["id"]: p["prediction"] for p in s["predictions"][:dialogues]}
               for name, s in zip(names, loaded, strict=True)}
    rouge = {}
    for name, s in zip(names, loaded, strict=True):
        kept = s["predictions"][:dialogues]
        scores = per_example_scores([p["prediction"] for p in kept], [p["references"] for p in kept])
        rouge[name] = dict(zip(ids, scores[PRIMARY_VIEW]["rougeL"].tolist(), strict=True))
    if reference:
        systems[REFERENCE] = {r["id"]: r["references"][0] for r in rows}
    details = {name: {label: _mean(values[:len(rows)]) for label, values in detail_values(s).items()}
               for name, s in zip(names, loaded, strict=True)}
    scored = {name: s["metrics"] | {"evaluation_folder": s["path"]} for name, s in zip(names, loaded, strict=True)}
    return Review(systems, {r["id"]: r["dialogue"] for r in rows}, rouge, scored, details)


def _mean(values) -> float | None:
    kept = [float(v) for v in values if v == v]  # NaN: nothing to recall in that dialogue
    return sum(kept) / len(kept) if kept else None


def _names(runs: list[Path]) -> list[str]:
    """Each run's folder name, or parent/name where two share a name."""
    names = [r.resolve().name for r in runs]
    return [f"{r.resolve().parent.name}/{n}" if names.count(n) > 1 else n for r, n in zip(runs, names, strict=True)]


def report(store: ReviewStore, samples: int = BOOTSTRAP_SAMPLES) -> dict:
    """Everything the Results tab and `review-report` show, computed from the stored judgments."""
    prefs = preferences(store.judgments())
    raters = {p["rater"] for p in prefs}
    if not prefs:
        return {"judgments": 0, "raters": 0}
    ranked = ranking(prefs, samples)
    return {"judgments": len(prefs), "raters": len(raters), "wins": win_rates(prefs, samples),
            "ranking": ranked, "agreement": agreement(prefs),
            "rouge": rouge_agreement(prefs, store.rouge()), "beside": beside(ranked, store.rouge(), store.details())}


def beside(ranked: pd.DataFrame, rouge: dict[str, dict[str, float]],
           details: dict[str, dict[str, float]]) -> pd.DataFrame:
    """The Bradley-Terry ranking beside each system's ROUGE-L and detail view on the rated dialogues: whether
    people prefer what ROUGE prefers, or what keeps the dialogue's details."""
    rows = []
    for system in ranked["system"]:
        scores = rouge.get(system)
        rows.append({"ROUGE-L": sum(scores.values()) / len(scores) if scores else None,
                     **{DETAIL_COLUMNS[k]: v for k, v in details.get(system, {}).items()}})
    return pd.concat([ranked.reset_index(drop=True), pd.DataFrame(rows)], axis=1)


def report_text(result: dict) -> str:
    """The report as text (what `review-report` prints)."""
    if not result["judgments"]:
        return "No judgments yet."
    a = result["agreement"]
    lines = [f"{result['judgments']} judgments by {result['raters']} rater(s).", "",
             "Pairwise win rates (ties count half; 95% bootstrap interval):",
             result["wins"].to_string(index=False, float_format="%.3f"), "",
             "Bradley-Terry ranking (strengths sum to 1; 95% bootstrap interval) beside ROUGE-L and the detail view "
             "(details.py; shares of the rated dialogues):",
             result["beside"].to_string(index=False, float_format="%.3f"), "", agreement_line(a), ""]
    if len(result["rouge"]):
        lines += ["Human preference vs ROUGE-L's (judgments that are not ties, where ROUGE-L differs):",
                  result["rouge"].to_string(index=False, float_format="%.3f")]
    return "\n".join(lines)


def agreement_line(a: dict) -> str:
    """Inter-rater agreement in one line, with the overlap it rests on."""
    if not a["overlapping tasks"]:
        return "Inter-rater agreement: no task was judged by two raters yet."

    def shown(value):
        return "n/a" if value is None else f"{value:.3f}"

    return (f"Inter-rater agreement on {a['overlapping tasks']} tasks judged by several raters "
            f"({a['overlapping judgments']} judgments): Krippendorff's alpha {shown(a['krippendorff_alpha'])}, "
            f"Fleiss' kappa {shown(a['fleiss_kappa'])}, Cohen's kappa {shown(a['cohen_kappa'])} "
            f"({a['cohen_raters']}).")


def judgments_csv(store: ReviewStore) -> str:
    """Every judgment as CSV (comments may hold newlines: quoted)."""
    rows = store.judgments()
    out = io.StringIO(newline="")
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


class Summarizer:
    """Each rated model, loaded once on first use as its evaluation loaded it (model, adapter, prompt, source
    length), to summarise any dialogue with adjustable generation."""

    def __init__(self, scored: dict[str, dict]) -> None:
        self.scored, self._loaded = scored, {}

    def summaries(self, dialogue: str, max_new_tokens: int = 64, num_beams: int = 1, sample: bool = False,
                  temperature: float = 1.0, top_p: float = 1.0) -> pd.DataFrame:
        """One row per run: its summary of `dialogue` under these settings."""
        from dialogsum_lab.generation import decoding, generation_config, summarize

        dialogue = (dialogue or "").strip()
        if not dialogue:
            raise UserError("paste a dialogue or pick one first.")
        if len(dialogue) > MAX_DIALOGUE_CHARACTERS:
            raise UserError(f"a dialogue has at most {MAX_DIALOGUE_CHARACTERS:,} characters here.")
        rows = []
        for name in self.scored:
            model, tokenizer, template, length = self._model(name)
            settings = decoding(max_new_tokens, num_beams, sample, temperature, top_p)
            summary = summarize(model, tokenizer, [dialogue], generation_config(model, **settings),
                                prompt_template=template, max_source_length=length, progress=False)[0]
            rows.append({"run": name, "summary": summary})
        return pd.DataFrame(rows, columns=["run", "summary"])

    def _model(self, name: str):
        if name not in self._loaded:
            from dialogsum_lab.modeling import load_trained

            m = self.scored[name]
            weights = scored_folder(m, m["evaluation_folder"])  # found from the evaluation, not the current folder
            if weights is None:
                model, tokenizer, _ = load_trained(m["model"], device="auto")
            else:
                model, tokenizer, _ = load_trained(str(weights), base=m["model"] if m.get("adapter") else None,
                                                   device="auto")
            self._loaded[name] = (model, tokenizer, m["prompt_template"], m["generation"]["max_source_length"])
        return self._loaded[name]
