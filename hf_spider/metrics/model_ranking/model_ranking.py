"""model_ranking: how well a ranking of candidate models matches their measured fine-tuning accuracy.

A Hugging Face ``evaluate`` module, shipped inside hf-spider and loaded from the installed package::

    import evaluate
    from hf_spider.metrics import model_ranking_path

    metric = evaluate.load(str(model_ranking_path()))
    metric.compute(references=[0.91, 0.88, 0.75], predictions=[2.0, 3.0, 1.0], k=[1, 5])

One call scores one target task: ``references`` are the measured accuracies of the candidates on it, ``predictions``
a selector's scores of the same candidates (higher is better; only their order matters, except for Pearson). The
definitions are those of hf-spider's benchmarks and of the TransferGraph paper (Li et al., ICDE 2024, Sec. V-A):

* ``weighted_tau``: ``scipy.stats.weightedtau(references, predictions)``, the published tables' metric (hyperbolic
  weigher: swaps among the best models cost the most).
* ``kendall`` (tau-b), ``spearman``, ``pearson``: ``scipy.stats``.
* for each ``k``: ``top{k}`` is 1.0 when a best model is among the ``k`` best-scored ones, else 0.0; ``rel{k}`` is the
  best accuracy among the ``k`` best-scored models over the best accuracy; ``regret{k}`` is the best accuracy minus
  the best accuracy among the ``k`` best-scored ones, in the references' unit (what fine-tuning the best of the
  shortlist costs against the best model). ``k`` at least the number of candidates gives 1.0, 1.0 and 0.0.

Ties: tied scores keep the candidates' order in the input for the top-k (as ``numpy.argmax`` does for k = 1); the
correlations handle ties as ``scipy.stats`` does. Constant scores or constant accuracies carry no ranking: every
correlation is then 0.0 rather than NaN. Scores and accuracies must be finite (give a candidate without a score the
lowest score to rank it last).

This file is self-contained (numpy, scipy, datasets, evaluate), so it can also be pushed to a Hub Space as it is.
"""

from __future__ import annotations

from collections.abc import Iterable

import datasets
import evaluate
import numpy as np
from scipy import stats

_CITATION = """\
@inproceedings{li2024transfergraph,
  title={Model Selection with Model Zoo via Graph Learning},
  author={Li, Ziyu and others},
  booktitle={IEEE International Conference on Data Engineering (ICDE)},
  note={arXiv:2404.03988},
  year={2024}
}
"""

_DESCRIPTION = """\
Ranking quality of a model selector on one target task: weighted Kendall tau, Kendall tau-b, Spearman and Pearson
correlations between predicted scores and measured fine-tuning accuracies, plus top@k, rel@k and regret@k of the
k best-scored candidates.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (`list` of `float`): the selector's score of each candidate (higher is better).
    references (`list` of `float`): the measured accuracy of each candidate on the target, same order.
    k (`list` of `int`, defaults to `[1, 5]`): shortlist sizes for top@k, rel@k and regret@k.
Returns:
    weighted_tau, kendall, spearman, pearson (`float`, -1 to 1), and per k: top{k} (0 or 1), rel{k} (0 to 1),
    regret{k} (`float`, in the references' unit).
Examples:
    >>> metric = evaluate.load("hf_spider/metrics/model_ranking")
    >>> metric.compute(references=[0.9, 0.8, 0.5], predictions=[3.0, 1.0, 2.0], k=[1])["rel1"]
    1.0
"""

#: Shortlist sizes reported when ``k`` is not given.
DEFAULT_K = (1, 5)


def model_ranking_scores(
    references: Iterable[float], predictions: Iterable[float], k: Iterable[int] = DEFAULT_K
) -> dict[str, float]:
    """The module's metrics for one target (see the module docstring for the definitions)."""
    truth = np.asarray(list(references), dtype=np.float64)
    predicted = np.asarray(list(predictions), dtype=np.float64)
    if truth.shape != predicted.shape or truth.ndim != 1:
        raise ValueError(f"references and predictions differ in shape ({truth.shape} vs {predicted.shape})")
    if len(truth) < 2:
        raise ValueError(f"ranking needs at least 2 candidates, got {len(truth)}")
    if not (np.isfinite(truth).all() and np.isfinite(predicted).all()):
        raise ValueError("references and predictions must be finite; give an unscored candidate the lowest score")
    constant = np.ptp(predicted) == 0 or np.ptp(truth) == 0
    out = {
        "weighted_tau": 0.0 if constant else float(stats.weightedtau(truth, predicted)[0]),
        "kendall": 0.0 if constant else float(stats.kendalltau(truth, predicted)[0]),
        "spearman": 0.0 if constant else float(stats.spearmanr(truth, predicted)[0]),
        "pearson": 0.0 if constant else float(stats.pearsonr(truth, predicted)[0]),
    }
    order = np.argsort(-predicted, kind="stable")  # best score first; ties keep the input order
    best = truth.max()
    for size in sorted({int(s) for s in k}):
        if size < 1:
            raise ValueError(f"k must be at least 1, got {size}")
        best_of_shortlist = truth[order[:size]].max()
        out[f"top{size}"] = float(best_of_shortlist == best)
        out[f"rel{size}"] = float(best_of_shortlist / best) if best > 0 else 0.0
        out[f"regret{size}"] = float(best - best_of_shortlist)
    return out


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ModelRanking(evaluate.Metric):
    """``evaluate`` wrapper of :func:`model_ranking_scores`: one ``compute`` call per target task."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}
            ),
            reference_urls=["https://arxiv.org/abs/2404.03988"],
        )

    def _compute(
        self, predictions: list[float], references: list[float], k: Iterable[int] = DEFAULT_K
    ) -> dict[str, float]:
        # Plain Python floats: the "numpy" output format of ``datasets`` casts float64 columns to float32.
        return model_ranking_scores(references, predictions, k)
