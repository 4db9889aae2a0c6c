"""Classical baselines on the same windows as the autoencoder (scikit-learn).

Every baseline follows one contract: ``fit(windows)`` on scaled normal windows,
``anomaly_score(windows)`` with higher = more anomalous (the edgewatch sign).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge_runtime.errors import require

__all__ = ["IsolationForestBaseline", "PCABaseline", "OneClassSVMBaseline", "LOFBaseline", "make_baselines"]

#: Kernel and neighbour methods scale badly with the training set; they see at most this many windows.
MAX_FIT_WINDOWS = 3000


def _flat(windows: NDArray[Any]) -> NDArray[np.float64]:
    return np.asarray(windows, dtype=np.float64).reshape(len(windows), -1)


class IsolationForestBaseline:
    name = "IsolationForest"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, windows: NDArray[Any]) -> IsolationForestBaseline:
        ensemble = require("sklearn.ensemble", "train")
        self.model_ = ensemble.IsolationForest(random_state=self.seed).fit(_flat(windows))
        return self

    def anomaly_score(self, windows: NDArray[Any]) -> NDArray[np.float64]:
        return -self.model_.score_samples(_flat(windows))


class PCABaseline:
    """Reconstruction error of a linear PCA model: the linear cousin of the autoencoder."""

    name = "PCA"

    def __init__(self, n_components: int = 10) -> None:
        self.n_components = n_components

    def fit(self, windows: NDArray[Any]) -> PCABaseline:
        decomposition = require("sklearn.decomposition", "train")
        x = _flat(windows)
        self.model_ = decomposition.PCA(n_components=min(self.n_components, *x.shape)).fit(x)
        return self

    def anomaly_score(self, windows: NDArray[Any]) -> NDArray[np.float64]:
        x = _flat(windows)
        recon = self.model_.inverse_transform(self.model_.transform(x))
        return ((x - recon) ** 2).mean(axis=1)


def _subsample(x: NDArray[np.float64], seed: int) -> NDArray[np.float64]:
    if len(x) <= MAX_FIT_WINDOWS:
        return x
    idx = np.random.default_rng(seed).choice(len(x), MAX_FIT_WINDOWS, replace=False)
    return x[np.sort(idx)]


class OneClassSVMBaseline:
    """RBF one-class SVM (``nu`` = expected outlier share of the training windows)."""

    name = "OneClassSVM"

    def __init__(self, nu: float = 0.05, seed: int = 0) -> None:
        self.nu = nu
        self.seed = seed

    def fit(self, windows: NDArray[Any]) -> OneClassSVMBaseline:
        svm = require("sklearn.svm", "train")
        self.model_ = svm.OneClassSVM(kernel="rbf", gamma="scale", nu=self.nu).fit(_subsample(_flat(windows), self.seed))
        return self

    def anomaly_score(self, windows: NDArray[Any]) -> NDArray[np.float64]:
        return -self.model_.score_samples(_flat(windows))


class LOFBaseline:
    """Local outlier factor in novelty mode (fitted on normal windows, scores new ones)."""

    name = "LOF"

    def __init__(self, n_neighbors: int = 20, seed: int = 0) -> None:
        self.n_neighbors = n_neighbors
        self.seed = seed

    def fit(self, windows: NDArray[Any]) -> LOFBaseline:
        neighbors = require("sklearn.neighbors", "train")
        x = _subsample(_flat(windows), self.seed)
        self.model_ = neighbors.LocalOutlierFactor(n_neighbors=min(self.n_neighbors, len(x) - 1), novelty=True).fit(x)
        return self

    def anomaly_score(self, windows: NDArray[Any]) -> NDArray[np.float64]:
        return -self.model_.score_samples(_flat(windows))


def make_baselines(seed: int = 0) -> list[Any]:
    """IsolationForest, one-class SVM, LOF and PCA, all with the edgewatch sign (higher = more anomalous)."""
    return [IsolationForestBaseline(seed), OneClassSVMBaseline(seed=seed), LOFBaseline(seed=seed), PCABaseline(10)]
