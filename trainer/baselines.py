"""Classical baselines on the same windows as the autoencoder (scikit-learn).

Every baseline follows one contract: ``fit(windows)`` on scaled normal windows,
``anomaly_score(windows)`` with higher = more anomalous (the edgewatch sign).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge_runtime.errors import require

__all__ = ["IsolationForestBaseline", "PCABaseline", "make_baselines"]


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


def make_baselines(seed: int = 0) -> list[Any]:
    return [IsolationForestBaseline(seed), PCABaseline(10)]
