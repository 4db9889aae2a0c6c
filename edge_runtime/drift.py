"""Score drift: is new data scored like the data the threshold was calibrated on?

Numpy only, because the gateway runs it too (no scipy there). The test is the
two-sample Kolmogorov-Smirnov test on window scores: the statistic ``D`` is the
largest gap between the two empirical CDFs, and the p-value comes from the
asymptotic Kolmogorov distribution of ``D * sqrt(n m / (n + m))`` (scipy's
``kstwobign.sf``; ``ks_2samp(method="asymp")`` uses a finite-n refinement and
is a little smaller). Window scores of overlapping
windows are correlated, so the p-value is optimistic; that is why the advice
also needs an effect size (``D``) and reports the alarm-rate shift, which is
what an operator feels.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> r = ks_2samp(rng.normal(size=500), rng.normal(size=400))
>>> 0 <= r.statistic <= 1 and r.p_value > 0.01
True
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge_runtime.errors import ConfigError, DataError

__all__ = ["KSResult", "DriftReport", "ks_2samp", "kolmogorov_sf", "drift_report"]


@dataclass(frozen=True)
class KSResult:
    statistic: float
    p_value: float
    n: int
    m: int


def kolmogorov_sf(x: float) -> float:
    """P(K > x) for the Kolmogorov distribution (limit of sqrt(n) D_n)."""
    if x <= 0:
        return 1.0
    if x < 1.18:
        # Jacobi-theta form: converges fast for small x, where the alternating series does not.
        k = np.arange(1, 9)
        cdf = math.sqrt(2 * math.pi) / x * float(np.sum(np.exp(-((2 * k - 1) ** 2) * math.pi ** 2 / (8 * x * x))))
        return float(min(1.0, max(0.0, 1.0 - cdf)))
    k = np.arange(1, 101)
    sf = 2.0 * float(np.sum((-1.0) ** (k - 1) * np.exp(-2.0 * k * k * x * x)))
    return float(min(1.0, max(0.0, sf)))


def ks_2samp(a: NDArray[Any], b: NDArray[Any]) -> KSResult:
    """Two-sample KS statistic and asymptotic p-value; NaNs are dropped.

    Raises :class:`DataError` when a sample is empty.
    """
    x = np.sort(np.asarray(a, dtype=np.float64).ravel())
    y = np.sort(np.asarray(b, dtype=np.float64).ravel())
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    if len(x) == 0 or len(y) == 0:
        raise DataError(f"KS test needs two non-empty samples (got {len(x)} and {len(y)} values)")
    grid = np.concatenate([x, y])
    d = float(np.max(np.abs(np.searchsorted(x, grid, side="right") / len(x)
                            - np.searchsorted(y, grid, side="right") / len(y))))
    en = math.sqrt(len(x) * len(y) / (len(x) + len(y)))
    return KSResult(d, kolmogorov_sf(d * en), len(x), len(y))


@dataclass(frozen=True)
class DriftReport:
    """New scores against calibration scores, and whether to retrain.

    ``retrain_advised`` is true when the score distributions differ both
    significantly (``p_value < alpha``) and materially (``statistic >=
    min_statistic``), or when the alarm rate moved by more than
    ``max_alarm_shift`` (absolute).
    """

    statistic: float
    p_value: float
    n_new: int
    n_reference: int
    alarm_rate_new: float
    alarm_rate_reference: float
    alarm_rate_shift: float
    threshold: float
    alpha: float
    min_statistic: float
    max_alarm_shift: float
    retrain_advised: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def drift_report(new_scores: NDArray[Any], reference_scores: NDArray[Any], threshold: float, *,
                 alpha: float = 0.01, min_statistic: float = 0.1, max_alarm_shift: float = 0.05) -> DriftReport:
    """Compare ``new_scores`` with the bundle's calibration scores at ``threshold``."""
    if not 0 < alpha < 1:
        raise ConfigError(f"--alpha {alpha!r} must be between 0 and 1 (exclusive), e.g. 0.01")
    if not 0 <= min_statistic <= 1:
        raise ConfigError(f"--min-statistic {min_statistic!r} must be between 0 and 1, e.g. 0.1")
    if not 0 <= max_alarm_shift <= 1:
        raise ConfigError(f"--max-alarm-shift {max_alarm_shift!r} must be between 0 and 1, e.g. 0.05")
    ks = ks_2samp(new_scores, reference_scores)
    new = np.asarray(new_scores, dtype=np.float64)
    ref = np.asarray(reference_scores, dtype=np.float64)
    rate_new = float(np.mean(new[~np.isnan(new)] > threshold))
    rate_ref = float(np.mean(ref[~np.isnan(ref)] > threshold))
    shift = rate_new - rate_ref
    reasons = []
    if ks.p_value < alpha and ks.statistic >= min_statistic:
        reasons.append(f"score distribution shifted (KS D={ks.statistic:.3f} >= {min_statistic}, p={ks.p_value:.2g} < {alpha})")
    if abs(shift) > max_alarm_shift:
        reasons.append(f"alarm rate moved by {shift:+.1%} (more than {max_alarm_shift:.0%})")
    reason = "; ".join(reasons) if reasons else "scores look like the calibration data"
    return DriftReport(ks.statistic, ks.p_value, ks.n, ks.m, rate_new, rate_ref, shift, float(threshold),
                       alpha, min_statistic, max_alarm_shift, bool(reasons), reason)
