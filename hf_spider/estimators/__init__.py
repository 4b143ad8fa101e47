"""Transferability estimators: score how well a model's features (or outputs) will transfer to a labelled task.

Each estimator is a pure function ``name(features, labels, *, ..., dtype=None, device=None) -> float`` in its own
module, written next to its paper (equation numbers in the module docstring) and checked against the published
reference implementations on the shared test vectors. All run in torch on any device, in float64 by default
(``dtype=torch.float32`` to opt in), and accept NumPy arrays or tensors. :data:`ESTIMATORS` names them for the
re-ranking stage and the benchmarks; :class:`EstimatorSpec` says which inputs each needs and which way is better.

Example:
    >>> import numpy as np
    >>> from hf_spider.estimators import ESTIMATORS
    >>> rng = np.random.default_rng(0)
    >>> y = np.arange(60) % 3
    >>> f = rng.normal(size=(60, 8)) + 2 * np.eye(3)[y] @ rng.normal(size=(3, 8))
    >>> spec = ESTIMATORS["logme"]
    >>> spec.inputs
    ('features', 'labels')
    >>> isinstance(spec(features=f, labels=y), float)
    True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import EstimatorInputError
from .gbc import gbc
from .hscore import hscore, reg_hscore
from .leep import leep
from .lfc import lfc
from .logme import logme
from .nce import nce
from .nleep import nleep
from .otce import otce, otce_components
from .pactran import pactran
from .sfda import sfda
from .transrate import transrate

#: Names of the arrays an estimator can take, as keyword arguments of :meth:`EstimatorSpec.__call__`.
INPUT_NAMES = ("features", "labels", "source_probs", "source_features", "source_labels")


@dataclass(frozen=True)
class EstimatorSpec:
    """How to call one estimator and how to read its score.

    Attributes:
        name: registry key (also the function's name in :mod:`hf_spider.estimators`).
        fn: the function.
        inputs: the arrays it needs, in positional order, then keyword ones: ``features`` [N, D] (the candidate's
            features on the target samples), ``labels`` [N] (target class ids 0..C-1), ``source_probs`` [N, K]
            (the candidate's own softmax outputs on the target samples, rows summing to one), and for OTCE
            ``source_features`` [M, D] / ``source_labels`` [M] (a labelled sample of the source task).
        higher_is_better: ``False`` where the score is a bound or distance (PACTran, OTCE): negate it to rank.
        seeded: the value depends on a ``seed=`` argument (fixed seed, inputs and device give a fixed value).
        reference: the paper and the reference implementation the vectors were taken from.
    """

    name: str
    fn: Callable[..., float]
    inputs: tuple[str, ...]
    higher_is_better: bool
    seeded: bool
    reference: str

    def __call__(self, **kwargs: Any) -> float:
        """Call the estimator with arrays named as in :attr:`inputs` plus any option of the function.

        Arrays the estimator does not use are ignored, so a caller can pass everything it has.

        Raises:
            EstimatorInputError: an input the estimator needs is missing.
        """
        arrays = {k: kwargs.pop(k) for k in INPUT_NAMES if k in kwargs}
        missing = [k for k in self.inputs if arrays.get(k) is None]
        if missing:
            raise EstimatorInputError(f"estimator '{self.name}' needs {', '.join(missing)}; pass them as keywords")
        positional = [arrays[k] for k in self.inputs[:2]]
        keywords = {k: arrays[k] for k in self.inputs[2:]}
        return self.fn(*positional, **keywords, **kwargs)

    def oriented(self, **kwargs: Any) -> float:
        """The score signed so that higher is always better (for ranking several estimators together)."""
        value = self(**kwargs)
        return value if self.higher_is_better else -value


_FEATURES = ("features", "labels")

#: Every estimator by name; the defaults reproduce the primary reference variant of the shared test vectors.
ESTIMATORS: dict[str, EstimatorSpec] = {
    spec.name: spec
    for spec in (
        EstimatorSpec("logme", logme, _FEATURES, True, False, "You et al. ICML 2021; thuml/LogME LogME.py"),
        EstimatorSpec("leep", leep, ("source_probs", "labels"), True, False, "Nguyen et al. ICML 2020; thuml/LogME"),
        EstimatorSpec("nleep", nleep, _FEATURES, True, True, "Li et al. CVPR 2021; Model-Spider mptms/LEEP.py"),
        EstimatorSpec("nce", nce, ("source_probs", "labels"), True, False, "Tran et al. ICCV 2019; thuml/LogME"),
        EstimatorSpec("hscore", hscore, _FEATURES, True, False, "Bao et al. ICIP 2019; Model-Spider H_Score.py"),
        EstimatorSpec("reg_hscore", reg_hscore, _FEATURES, True, False, "Ibrahim et al. 2022; TransferGraph"),
        EstimatorSpec("gbc", gbc, _FEATURES, True, False, "Pandy et al. CVPR 2022; TransferGraph gbc.py"),
        EstimatorSpec("sfda", sfda, _FEATURES, True, False, "Shao et al. ECCV 2022; TransferGraph sfda.py"),
        EstimatorSpec("pactran", pactran, _FEATURES, False, True, "Ding et al. ECCV 2022; TransferGraph pactran.py"),
        EstimatorSpec("transrate", transrate, _FEATURES, True, False, "Huang et al. ICML 2022; TransferGraph"),
        EstimatorSpec("lfc", lfc, _FEATURES, True, False, "Deshpande et al. 2021; Model-Spider LFC.py"),
        EstimatorSpec(
            "otce",
            otce,
            ("features", "labels", "source_features", "source_labels"),
            False,
            False,
            "Tan et al. CVPR 2021; Model-Spider OTCE.py",
        ),
    )
}

__all__ = [
    "ESTIMATORS",
    "INPUT_NAMES",
    "EstimatorSpec",
    "gbc",
    "hscore",
    "leep",
    "lfc",
    "logme",
    "nce",
    "nleep",
    "otce",
    "otce_components",
    "pactran",
    "reg_hscore",
    "sfda",
    "transrate",
]
