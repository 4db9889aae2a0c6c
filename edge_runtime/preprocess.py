"""Per-channel standardisation, fitted on training data only and stored in the bundle."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from numpy.typing import NDArray

from edge_runtime.errors import DataError

__all__ = ["Standardizer", "Indicator"]

# Channels whose spread is this small relative to their level carry no
# information and would blow up after division; we refuse them instead.
_MIN_RELATIVE_STD = 1e-9


class Indicator(str):
    """The name of a 0/1 indicator channel (one category of a one-hot encoded column).

    :meth:`Standardizer.fit` passes indicator channels through unscaled (mean 0,
    scale 1): they are already on the model's scale, and one that is all zeros
    in the training split (a category seen only in validation rows) is not an
    error the way a constant sensor is.
    """

    __slots__ = ()


@dataclass(frozen=True)
class Standardizer:
    """``(x - mean) / scale`` per channel; :class:`Indicator` channels keep mean 0, scale 1."""

    mean: NDArray[np.float64]
    scale: NDArray[np.float64]

    @classmethod
    def fit(cls, values: NDArray[np.floating[Any]], channels: Sequence[str], source: str = "training data") -> Standardizer:
        values = np.asarray(values, dtype=np.float64)
        mean = values.mean(axis=0)
        std = values.std(axis=0)
        indicator = np.array([isinstance(c, Indicator) for c in channels], dtype=bool)
        if indicator.any():
            mean, std = np.where(indicator, 0.0, mean), np.where(indicator, 1.0, std)
        for name, m, s in zip(channels, mean, std):
            if not s > _MIN_RELATIVE_STD * max(1.0, abs(m)):
                raise DataError(
                    f"{source}: column {name!r} is constant ({m:g}) in the training rows; "
                    "it cannot inform the model: leave it out of --columns"
                )
        return cls(mean=mean, scale=std)

    def transform(self, values: NDArray[np.floating[Any]]) -> NDArray[np.float32]:
        return ((np.asarray(values, dtype=np.float64) - self.mean) / self.scale).astype(np.float32)

    def to_manifest(self) -> dict[str, Any]:
        return {"kind": "standard", "mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_manifest(cls, d: dict[str, Any]) -> Standardizer:
        return cls(mean=np.asarray(d["mean"], dtype=np.float64), scale=np.asarray(d["scale"], dtype=np.float64))
