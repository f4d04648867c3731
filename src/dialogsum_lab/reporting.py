"""Tables and pictures of results: what a learner reads after a run."""

import pandas as pd

from dialogsum_lab.metrics import ROUGE_TYPES, VIEWS


def rouge_frame(metrics: dict) -> pd.DataFrame:
    """One row per multi-reference view, one column per ROUGE type: 'mean [ci_low, ci_high]'."""
    return pd.DataFrame(
        {t: [f"{metrics['rouge'][v][t]['mean']:.4f} [{metrics['rouge'][v][t]['ci_low']:.4f}, "
             f"{metrics['rouge'][v][t]['ci_high']:.4f}]" for v in VIEWS] for t in ROUGE_TYPES},
        index=pd.Index(list(VIEWS), name="view"))


def rouge_table(metrics: dict, title: str = "") -> str:
    refs = metrics["references_per_example"]
    span = f"{refs['min']}" if refs["min"] == refs["max"] else f"{refs['min']}-{refs['max']}"
    head = (f"{title}ROUGE F1 over {metrics['n_examples']} examples ({span} references each); "
            f"{metrics['settings']['confidence']:.0%} bootstrap interval in brackets")
    return f"{head}\n{rouge_frame(metrics).to_string()}"
