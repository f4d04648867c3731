"""Systems nobody trained, scored like any run: what a model must beat before its scores mean it read the dialogue.

- `lead`: the dialogue's first k turns; `longest`: its k longest turns, in order (DialogSum's paper reports
  Longest-3 beside its models).
- `retrieval`: the summary of the most similar *training* dialogue (TF-IDF cosine, scikit-learn). It copies a
  summary of the right shape and learns nothing of this dialogue: where it scores as well as a fine-tuned model,
  ROUGE is seeing the template, not the reading. It never returns a summary of the split being scored.

`run_baseline` writes an ordinary evaluation folder (predictions.jsonl, metrics.json with intervals, details and
`scored_against`), so `compare`, the notebooks, the model card and the review app take it like a run.
"""

from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset

from dialogsum_lab.config import BASELINE_KINDS as KINDS
from dialogsum_lab.config import BASELINE_TURNS as DEFAULT_TURNS
from dialogsum_lab.config import EvalConfig
from dialogsum_lab.errors import UserError


@dataclass(frozen=True)
class Baseline:
    """Which baseline, and what retrieval may look up (the training split of `train_data`, default the scored data)."""

    kind: str
    turns: int = DEFAULT_TURNS
    train_data: str | None = None
    train_split: str = "train"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UserError(f"unknown baseline '{self.kind}'. Choose one of {', '.join(KINDS)}.")
        if self.turns < 1:
            raise UserError(f"--turns {self.turns}: a baseline needs at least one turn. Pass --turns 1 or more.")

    @property
    def name(self) -> str:
        return "retrieval" if self.kind == "retrieval" else f"{self.kind}-{self.turns}"


def turns_of(dialogue: str) -> list[str]:
    """The dialogue's turns, one a line, as DialogSum writes them."""
    return [line.strip() for line in dialogue.split("\n") if line.strip()]


def lead(dialogue: str, k: int) -> str:
    """The first `k` turns."""
    return "\n".join(turns_of(dialogue)[:k])


def longest(dialogue: str, k: int) -> str:
    """The `k` longest turns (in words; the earlier of equals), in the order they were said."""
    turns = turns_of(dialogue)
    chosen = sorted(sorted(range(len(turns)), key=lambda i: (-len(turns[i].split()), i))[:k])
    return "\n".join(turns[i] for i in chosen)


def retrieve(dialogues: list[str], library: Dataset) -> tuple[list[str], list[dict]]:
    """For each dialogue, the first summary of the most similar dialogue in `library` by TF-IDF cosine, and which
    one it was (id and similarity) for the predictions file."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(sublinear_tf=True)
    known = vectorizer.fit_transform(library["dialogue"])
    similarity = (vectorizer.transform(dialogues) @ known.T).toarray()  # rows are L2-normalised: cosine
    best = similarity.argmax(axis=1)
    ids, summaries = library["id"], library["references"]
    return ([summaries[j][0] for j in best],
            [{"retrieved_from": ids[j], "similarity": round(float(similarity[i, j]), 4)} for i, j in enumerate(best)])


def _library(baseline: Baseline, config: EvalConfig, scored: Dataset) -> Dataset:
    """The training dialogues retrieval may copy from, without any dialogue that is being scored."""
    from dialogsum_lab.data import UNNAMED_SPLIT, load_dialogsum, select_split
    from dialogsum_lab.training_data import text_fingerprint

    source = baseline.train_data or config.data
    if (source, baseline.train_split) == (config.data, config.split):
        raise UserError(f"retrieval would look up the {config.split} split it is scored on. Score another --split, "
                        "or name the split to look up with --train-split.")
    data = load_dialogsum(source, skip_invalid=config.skip_invalid)
    if source == config.data and list(data) == [UNNAMED_SPLIT]:
        raise UserError(f"{source} is a single file, so retrieval would copy the summaries it is scored against. "
                        "Pass --train-data with a training file.")
    library = select_split(data, baseline.train_split)
    scored_texts = {text_fingerprint(d) for d in scored["dialogue"]}
    keep = [i for i, (d, refs) in enumerate(zip(library["dialogue"], library["references"], strict=True))
            if refs and text_fingerprint(d) not in scored_texts]
    if not keep:
        raise UserError(f"the {baseline.train_split} split of {source} has no summarised dialogue to look up. "
                        "Pass --train-data with training data.")
    return library.select(keep)


def predict(baseline: Baseline, config: EvalConfig, data: Dataset) -> tuple[list[str], list[dict]]:
    """The baseline's summary of every dialogue of `data`, and per-dialogue notes (retrieval's neighbour)."""
    dialogues = list(data["dialogue"])
    if baseline.kind == "retrieval":
        return retrieve(dialogues, _library(baseline, config, data))
    pick = lead if baseline.kind == "lead" else longest
    return [pick(d, baseline.turns) for d in dialogues], [{} for _ in dialogues]


def run_baseline(baseline: Baseline, config: EvalConfig, out: str | Path | None, overwrite: bool = False,
                 ids: list[str] | None = None) -> tuple[Path, dict]:
    """Summarise the split with the baseline, score it like any system, write an evaluation folder. `ids` keeps only
    those dialogues, in that order (to stand beside runs scored on them)."""
    from dialogsum_lab.evaluation import load_eval_split, write_results
    from dialogsum_lab.runs import check_run_dir, run_folder, run_path

    if config.task != "summary":
        raise UserError(f"baselines summarise; task {config.task} has none. Use --task summary.")
    out = run_path(out, f"baseline-{baseline.name}")
    check_run_dir(out, overwrite)
    data = load_eval_split(config)[0]
    if ids is not None:
        position = {ident: i for i, ident in enumerate(data["id"])}
        data = data.select([position[i] for i in ids if i in position])
    predictions, notes = predict(baseline, config, data)
    metadata = {"system": baseline.name, "baseline": {"kind": baseline.kind, "turns": baseline.turns,
                                                      "train_data": baseline.train_data or config.data,
                                                      "train_split": baseline.train_split}}
    with run_folder(out, overwrite) as folder:
        metrics = write_results(folder, data, predictions, config, metadata, notes)
    return out, metrics


def with_baselines(paths: list[str | Path], folder: Path) -> list[Path]:
    """`paths` (evaluated runs) and lead-3, longest-3 and retrieval scored into `folder` on exactly the dialogues and
    settings the first of them was scored with (made again each time: they are quick and derived)."""
    import dataclasses

    from dialogsum_lab.config import EVAL_CONFIG
    from dialogsum_lab.reporting import load_system

    first = load_system(paths[0])
    saved, metrics = Path(first["path"]) / EVAL_CONFIG, first["metrics"]
    config = (EvalConfig.load(saved) if saved.is_file()
              else EvalConfig(data=metrics.get("data", "sample"), split=metrics.get("split", "test")))
    config = dataclasses.replace(config, limit=None, unseen_only=False, task="summary")
    ids = [p["id"] for p in first["predictions"]]
    made = [run_baseline(Baseline(kind), config, folder / Baseline(kind).name, overwrite=True, ids=ids)[0]
            for kind in KINDS]
    return [Path(p) for p in paths] + made
