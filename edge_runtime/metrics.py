"""Runtime counters, latency percentiles and the score drift statistic.

Each counter has one writer thread (reader, inference or publisher), so plain
integer attributes are enough under the GIL; :meth:`Metrics.snapshot` reads
them from the metrics thread and turns totals into per-second rates.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge_runtime.drift import KSResult, ks_2samp
from edge_runtime.errors import DataError

__all__ = ["Metrics", "LatencyWindow", "ks_statistic"]


def ks_statistic(live: NDArray[np.float64], reference: NDArray[np.float64]) -> float | None:
    """Two-sample Kolmogorov-Smirnov statistic (0 = same distribution, 1 = disjoint).

    ``None`` when either sample is empty. Used as the drift statistic of live
    window scores against the bundle's calibration scores; the same function
    as ``edgewatch drift`` (:func:`edge_runtime.drift.ks_2samp`).
    """
    result = _ks(live, reference)
    return None if result is None else result.statistic


def _ks(live: NDArray[np.float64], reference: NDArray[np.float64]) -> KSResult | None:
    try:
        return ks_2samp(live, reference)
    except DataError:  # an empty (or all-NaN) sample: nothing to compare yet
        return None


class LatencyWindow:
    """The last ``size`` latencies in milliseconds, with percentiles."""

    def __init__(self, size: int = 4096) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()
        self.count = 0

    def add(self, ms: float) -> None:
        with self._lock:
            self._values.append(ms)
            self.count += 1

    def percentiles(self, *qs: float) -> list[float | None]:
        with self._lock:
            values = np.fromiter(self._values, dtype=np.float64)
        if len(values) == 0:
            return [None for _ in qs]
        return [round(float(v), 3) for v in np.percentile(values, qs)]

    def all(self) -> list[float]:
        with self._lock:
            return list(self._values)


@dataclass
class Metrics:
    """Totals since start; ``snapshot`` adds rates since the previous snapshot."""

    samples: int = 0
    windows: int = 0
    events: int = 0
    gaps: int = 0
    lost_frames: int = 0
    decode_errors: int = 0
    reconnects: int = 0
    queue_overflows: int = 0
    inference: LatencyWindow = field(default_factory=LatencyWindow)
    end_to_end: LatencyWindow = field(default_factory=LatencyWindow)
    live_scores: deque[float] = field(default_factory=lambda: deque(maxlen=1000))
    started: float = field(default_factory=time.monotonic)
    _last: tuple[float, int, int] | None = None

    def snapshot(self, *, calibration: NDArray[np.float64], queue_depth: int, outbox_depth: int,
                 events_dropped: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        now = time.monotonic()
        prev = self._last or (self.started, 0, 0)
        dt = max(now - prev[0], 1e-9)
        self._last = (now, self.samples, self.windows)
        p50, p99 = self.inference.percentiles(50, 99)
        e50, e99 = self.end_to_end.percentiles(50, 99)
        drift = _ks(np.fromiter(list(self.live_scores), dtype=np.float64), calibration)
        snap = {
            "samples_per_s": round((self.samples - prev[1]) / dt, 2),
            "windows_per_s": round((self.windows - prev[2]) / dt, 2),
            "inference_ms_p50": p50, "inference_ms_p99": p99,
            "event_latency_ms_p50": e50, "event_latency_ms_p99": e99,
            "uptime_s": round(now - self.started, 3), "samples": self.samples, "windows": self.windows, "events": self.events,
            "decode_errors": self.decode_errors, "lost_frames": self.lost_frames, "gaps": self.gaps,
            "serial_reconnects": self.reconnects, "queue_overflows": self.queue_overflows,
            "queue_depth": queue_depth, "outbox_depth": outbox_depth, "events_dropped": events_dropped,
            "drift_ks": None if drift is None else round(drift.statistic, 4),
            "drift_p": None if drift is None else float(f"{drift.p_value:.4g}"),
        }
        snap.update(extra or {})
        return snap
