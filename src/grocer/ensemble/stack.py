"""Stacking: a meta-learner on the base models' predictions, scored fold-honestly.

Meta-features (`build_features`), one column each, every column tagged with the class it
is about (-1 when it is about no single class):
  per model    probs and logits of every class; entropy of the probs; margin (top-1 minus
               top-2 probability); top-2 gap (top-1 minus top-2 logit)
  per pair     for each configured pair (a, b) and model: logit_b - logit_a
  per expert   the pair expert's probability of b (when pair experts are configured)

Meta-learners (`METHODS`, chosen by `stack.method`):
  hgb              HistGradientBoostingClassifier on all columns (no early stopping: the
                   number of trees is the param, and no internal random split is drawn).
                   It runs on one OpenMP thread: on a machine whose cores are busy (training,
                   `dvc queue start -j 2`) OpenMP's spinning threads made it 15-50x slower
                   (measured on 2 cores), while one thread costs at most 2x on an idle one
  logreg           standardised multinomial logistic regression, C = stack.logreg_c
  classwise_ridge  for each class c a ridge regression of "is c" on the columns about c
                   plus the class-agnostic ones (alpha = stack.ridge_alpha); the scores are
                   clipped to [RIDGE_FLOOR, 1] and normalised into probabilities

Honesty is not in this module's models but in how they are fitted: `crossfit.cross_fit`
trains the meta-model for evaluation fold k on the other folds' rows only (see
tests/test_ensemble_stack.py for the leak test); the test prediction comes from one
meta-model fitted on every OOF row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from grocer.ensemble.blend import one_hot
from grocer.ensemble.crossfit import cross_fit
from grocer.errors import GrocerError
from grocer.params import StackParams

RIDGE_FLOOR = 1e-3  # smallest probability a ridge score becomes: a negative score means "unlikely", not "impossible"


@dataclass(frozen=True)
class MetaFeatures:
    matrix: np.ndarray  # (n, F) float64
    names: list[str]
    column_class: np.ndarray  # (F,) class index each column is about, -1 for class-agnostic


def build_features(
    logits: np.ndarray,
    probs: np.ndarray,
    model_names: list[str],
    pairs: dict[str, tuple[int, int]],
    expert_prob_b: dict[str, np.ndarray],
) -> MetaFeatures:
    """Meta-features of n rows.

    Args:
        logits, probs: (n_models, n, K) base-model outputs, in `model_names` order.
        pairs: pair name -> (index of class a, index of class b).
        expert_prob_b: pair name -> (n,) expert probability of b; empty when there are no experts.
    """
    columns: list[np.ndarray] = []
    names: list[str] = []
    column_class: list[int] = []

    def add(name: str, values: np.ndarray, about: int) -> None:
        columns.append(np.asarray(values, dtype=np.float64))
        names.append(name)
        column_class.append(about)

    n_classes = probs.shape[2]
    for m, model in enumerate(model_names):
        p = probs[m].astype(np.float64)
        z = logits[m].astype(np.float64)
        for k in range(n_classes):
            add(f"{model}:prob{k}", p[:, k], k)
            add(f"{model}:logit{k}", z[:, k], k)
        top_p = np.sort(p, axis=1)
        top_z = np.sort(z, axis=1)
        add(f"{model}:entropy", -(p * np.log(np.clip(p, 1e-12, None))).sum(axis=1), -1)
        add(f"{model}:margin", top_p[:, -1] - top_p[:, -2], -1)
        add(f"{model}:top2_gap", top_z[:, -1] - top_z[:, -2], -1)
        for pair, (a, b) in pairs.items():
            add(f"{model}:{pair}:logit_diff", z[:, b] - z[:, a], -1)
    for pair, prob_b in expert_prob_b.items():
        add(f"expert:{pair}:prob_b", prob_b, -1)
    return MetaFeatures(np.stack(columns, axis=1), names, np.array(column_class, dtype=np.int64))


class MetaModel(Protocol):
    def fit(self, x: np.ndarray, y: np.ndarray) -> MetaModel: ...

    def predict_proba(self, x: np.ndarray) -> np.ndarray: ...


class _AllClasses:
    """An sklearn classifier whose predict_proba always has n_classes columns.

    A training split can miss a rare class; sklearn then returns fewer columns, which
    are put back in place here (the missing class gets probability 0).
    """

    def __init__(self, estimator, n_classes: int, openmp_threads: int | None = None) -> None:
        self.estimator = estimator
        self.n_classes = n_classes
        self.openmp_threads = openmp_threads  # None: OpenMP's default

    def fit(self, x: np.ndarray, y: np.ndarray) -> _AllClasses:
        if np.unique(y).size < 2:
            raise GrocerError(f"stack: the meta-model's {y.size} training rows hold a single class")
        with threadpool_limits(self.openmp_threads, user_api="openmp"):
            self.estimator.fit(x, y)
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        out = np.zeros((x.shape[0], self.n_classes))
        with threadpool_limits(self.openmp_threads, user_api="openmp"):
            out[:, self.estimator.classes_] = self.estimator.predict_proba(x)
        return out


class ClasswiseRidge:
    """One ridge regression per class on the columns about that class (+ class-agnostic ones)."""

    def __init__(self, column_class: np.ndarray, n_classes: int, alpha: float) -> None:
        self.n_classes = n_classes
        self.alpha = alpha
        self.blocks = [np.flatnonzero((column_class == k) | (column_class < 0)) for k in range(n_classes)]

    def fit(self, x: np.ndarray, y: np.ndarray) -> ClasswiseRidge:
        target = one_hot(y, self.n_classes)
        self.models = [
            make_pipeline(StandardScaler(), Ridge(alpha=self.alpha)).fit(x[:, cols], target[:, k])
            for k, cols in enumerate(self.blocks)
        ]
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        scores = np.stack([model.predict(x[:, cols]) for model, cols in zip(self.models, self.blocks)], axis=1)
        scores = np.clip(scores, RIDGE_FLOOR, 1.0)
        return scores / scores.sum(axis=1, keepdims=True)


def _hgb(params: StackParams, column_class: np.ndarray, n_classes: int) -> MetaModel:
    estimator = HistGradientBoostingClassifier(
        max_iter=params.hgb_max_iter, learning_rate=params.hgb_learning_rate, early_stopping=False, random_state=0
    )
    return _AllClasses(estimator, n_classes, openmp_threads=1)


def _logreg(params: StackParams, column_class: np.ndarray, n_classes: int) -> MetaModel:
    estimator = make_pipeline(StandardScaler(), LogisticRegression(C=params.logreg_c, max_iter=2000))
    return _AllClasses(estimator, n_classes)


def _classwise_ridge(params: StackParams, column_class: np.ndarray, n_classes: int) -> MetaModel:
    return ClasswiseRidge(column_class, n_classes, params.ridge_alpha)


METHODS: dict[str, Callable[[StackParams, np.ndarray, int], MetaModel]] = {
    "hgb": _hgb,
    "logreg": _logreg,
    "classwise_ridge": _classwise_ridge,
}


def create_meta_model(params: StackParams, column_class: np.ndarray, n_classes: int) -> MetaModel:
    """A fresh, unfitted meta-model of `params.method`."""
    if params.method not in METHODS:
        raise GrocerError(f"stack.method {params.method!r} is unknown (known: {', '.join(METHODS)})")
    return METHODS[params.method](params, column_class, n_classes)


def cross_fit_probs(
    x: np.ndarray, y: np.ndarray, eval_fold: np.ndarray, make_model: Callable[[], MetaModel]
) -> np.ndarray:
    """(n, K) held-out meta probabilities: rows of fold k from a fresh model fitted on the other folds."""
    # Not sklearn's cross_val_predict + PredefinedSplit: cross_fit is the one cross-fitting the
    # bias, override and selection share (their fits are not sklearn estimators), and the
    # meta-models would have to become full estimators (get_params, predict) for the same numbers.
    return cross_fit(
        eval_fold,
        lambda rows: make_model().fit(x[rows], y[rows]),
        lambda model, rows: model.predict_proba(x[rows]),
    )
