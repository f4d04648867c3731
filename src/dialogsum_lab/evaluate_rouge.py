"""This project's ROUGE as an `evaluate` metric: the Hub's "rouge" interface, loadable offline by path.

The lab scores with `evaluate.load("rouge")`, whose script lives on the Hugging Face Hub. This module is a
drop-in for it that needs no network:

    import evaluate
    from dialogsum_lab.metrics import ROUGE_METRIC
    rouge = evaluate.load(ROUGE_METRIC)
    rouge.compute(predictions=[...], references=[...], use_stemmer=True, use_aggregator=True)

With the Hub module's arguments it returns the Hub module's numbers (rouge_score, `score_multi` for lists of
references, the `BootstrapAggregator`'s median; rougeLsum without sentence splitting, as the lab ran it).
`seed` makes that bootstrap repeatable. `views=True` returns this project's scores instead: every
multi-reference view with bootstrap intervals (`metrics.compute_rouge`).
"""

import datasets
import evaluate
import numpy as np
from rouge_score import rouge_scorer, scoring

from dialogsum_lab.metrics import BOOTSTRAP_SAMPLES, compute_rouge

_DESCRIPTION = __doc__
_KWARGS = """
Args:
    predictions: the summaries to score.
    references: one reference per prediction, or a list of references per prediction.
    rouge_types: default rouge1, rouge2, rougeL, rougeLsum.
    use_stemmer: Porter stemming (the lab passes True; the Hub module's default is False).
    use_aggregator: one aggregate per type (the bootstrap median), else a list of per-example F1.
    seed: seed of the aggregator's bootstrap (default: numpy's global state, as the Hub module).
    views: return dialogsum-lab's views with confidence intervals (always stemmed) instead.
    bootstrap_samples: resamples for those intervals.
Returns:
    rouge1, rouge2, rougeL, rougeLsum: F1 in [0, 1].
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class Rouge(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="Lin, Chin-Yew (2004). ROUGE: A Package for Automatic Evaluation of "
                                               "Summaries.", inputs_description=_KWARGS,
            features=[datasets.Features({"predictions": datasets.Value("string", id="sequence"),
                                         "references": datasets.Sequence(datasets.Value("string", id="sequence"))}),
                      datasets.Features({"predictions": datasets.Value("string", id="sequence"),
                                         "references": datasets.Value("string", id="sequence")})])

    def _compute(self, predictions, references, rouge_types=None, use_aggregator=True, use_stemmer=False,
                 seed=None, views=False, bootstrap_samples=BOOTSTRAP_SAMPLES):
        multi = bool(references) and isinstance(references[0], list)
        if views:
            return compute_rouge(predictions, references if multi else [[r] for r in references], bootstrap_samples)
        scorer = rouge_scorer.RougeScorer(rouge_types or ["rouge1", "rouge2", "rougeL", "rougeLsum"],
                                          use_stemmer=use_stemmer)
        scores = [scorer.score_multi(r, p) if multi else scorer.score(r, p)
                  for r, p in zip(references, predictions, strict=True)]
        if not use_aggregator:
            return {key: [s[key].fmeasure for s in scores] for key in scores[0]}
        aggregator = scoring.BootstrapAggregator()
        for score in scores:
            aggregator.add_scores(score)
        state = np.random.get_state()
        if seed is not None:
            np.random.seed(seed)
        try:
            return {key: value.mid.fmeasure for key, value in aggregator.aggregate().items()}
        finally:
            if seed is not None:
                np.random.set_state(state)
