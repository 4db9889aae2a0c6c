"""Decoded events -> channel mapping -> scaler -> windows -> model -> alarms; synchronous.

:class:`Pipeline` is what the inference thread runs. It has no threads or I/O
of its own, so tests drive it directly with firmware_bridge events. A gap
(``Gap``, a serial reconnect, a device reset, a queue overflow) resets the
window buffer, so no window is ever spliced across it, and is counted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge_runtime.alarms import AlarmEvent, AlarmMachine
from edge_runtime.config import AlarmSettings
from edge_runtime.errors import BundleError
from edge_runtime.metrics import Metrics
from edge_runtime.windows import WindowBuffer

__all__ = ["Pipeline", "ScoredWindow", "StreamBreak", "ChannelMismatchError"]

log = logging.getLogger(__name__)


class ChannelMismatchError(BundleError):
    """The device's channels do not include the bundle's."""


@dataclass(frozen=True)
class StreamBreak:
    """A discontinuity the transport noticed (reconnect, queue overflow); not from the decoder."""

    reason: str


@dataclass(frozen=True)
class ScoredWindow:
    score: float
    threshold: float
    window_start: float           # UTC epoch seconds
    window_end: float
    t_rx: float                   # time.monotonic() when the window's last sample was read
    contributions: NDArray[np.float64]


class Pipeline:
    """One device's stream through one scorer.

    Parameters
    ----------
    scorer : BundleScorer
        Provides ``scaler``, ``channels``, ``window``, ``score_scaled`` and ``threshold``.
    stride : int
        Windows are cut every ``stride`` samples (from the bundle).
    on_event : callable(AlarmEvent, ScoredWindow)
        Called on every announced alarm state change.
    on_window : callable(ScoredWindow), optional
        Called for every scored window (the down-sampled ``scores`` stream).
    """

    def __init__(self, scorer: Any, *, stride: int, alarm: AlarmSettings, sample_rate_hz: float | None,
                 on_event: Callable[[AlarmEvent, ScoredWindow], None], metrics: Metrics,
                 on_window: Callable[[ScoredWindow], None] | None = None, source: str = "device") -> None:
        self.metrics = metrics
        self.on_event = on_event
        self.on_window = on_window
        self.source = source
        self.alarms = AlarmMachine(alarm, scorer.channels)
        self.threshold_override: float | None = None
        self._rate = sample_rate_hz
        self._stride = stride
        self.use_scorer(scorer)
        self._index_for: dict[tuple[str, ...], NDArray[np.intp]] = {}
        self._anchor: tuple[float, float] | None = None   # (wall seconds, device seconds) at the last break
        self._hello_channels: tuple[str, ...] | None = None

    def use_scorer(self, scorer: Any) -> None:
        """Switch model (bundle reload); the stream restarts so windows stay consistent."""
        self.scorer = scorer
        self.channels = list(scorer.channels)
        self.buffer = WindowBuffer(scorer.window, self._stride, len(self.channels))
        self._index_for = {}
        self.alarms.channels = self.channels

    @property
    def threshold(self) -> float:
        return self.threshold_override if self.threshold_override is not None else float(self.scorer.threshold)

    # ---------------------------------------------------------------- input
    def check_channels(self, device_channels: tuple[str, ...]) -> NDArray[np.intp]:
        idx = self._index_for.get(device_channels)
        if idx is not None:
            return idx
        missing = [c for c in self.channels if c not in device_channels]
        if missing:
            raise ChannelMismatchError(
                f"the bundle expects channels {self.channels!r} but {self.source} sends {list(device_channels)!r} "
                f"(missing {missing!r}); flash matching firmware or pass a bundle trained on these channels"
            )
        idx = np.array([device_channels.index(c) for c in self.channels], dtype=np.intp)
        self._index_for[device_channels] = idx
        return idx

    def handle(self, event: Any, t_rx: float) -> None:
        """Process one decoded event (firmware_bridge ``Hello``/``Samples``/``Gap``/... or :class:`StreamBreak`)."""
        kind = type(event).__name__
        if kind == "Samples":
            self._samples(event, t_rx)
        elif kind == "Hello":
            # Devices repeat HELLO periodically; only a change of layout breaks
            # the stream (a reboot arrives from the decoder as Gap("reset")).
            channels = tuple(event.channels)
            self.check_channels(channels)
            if event.sample_rate_hz:
                self._rate = float(event.sample_rate_hz)
            if channels != self._hello_channels:
                if self._hello_channels is not None:
                    self._break("new channel layout", 0)
                self._hello_channels = channels
        elif kind == "Gap":
            self._break(event.reason, int(event.lost_frames))
        elif isinstance(event, StreamBreak):
            self._break(event.reason, 0)
        elif kind == "DecodeError":
            self.metrics.decode_errors += 1
        elif kind == "DeviceMessage" and event.is_error:
            log.warning("%s says: %s", self.source, event.text)

    def _break(self, reason: str, lost: int) -> None:
        if self.buffer._seen:  # only a break inside a stream is a gap worth reporting
            self.metrics.gaps += 1
            log.info("stream gap (%s, %d frame(s) lost): windows restart after it", reason, lost)
        self.metrics.lost_frames += lost
        self.buffer.reset()
        self._anchor = None

    def _sample_times(self, event: Any, n: int) -> NDArray[np.float64]:
        rate = self._rate or 1.0
        offsets = np.arange(n, dtype=np.float64) / rate
        if event.device_time_us is None or event.device_time_us < 0:
            return time.time() - offsets[::-1]
        dev = event.device_time_us / 1e6
        if self._anchor is None:
            self._anchor = (time.time(), dev)
        return self._anchor[0] + (dev - self._anchor[1]) + offsets

    def _samples(self, event: Any, t_rx: float) -> None:
        channels = event.channels if event.channels is not None else tuple(self.channels)
        idx = self.check_channels(tuple(channels))
        values = np.asarray(event.values, dtype=np.float64)
        if values.ndim != 2 or len(values) == 0:
            return
        scaled = self.scorer.scaler.transform(values[:, idx])
        self.metrics.samples += len(scaled)
        windows: list[NDArray[np.float64]] = []
        ends: list[int] = []
        push = self.buffer.push
        for i, row in enumerate(scaled):
            w = push(row)
            if w is not None:
                windows.append(w)
                ends.append(i)
        if not windows:
            return
        times = self._sample_times(event, len(scaled))
        t0 = time.perf_counter()
        scores, contrib = self.scorer.score_scaled(np.stack(windows))
        per_window_ms = (time.perf_counter() - t0) * 1000.0 / len(windows)
        span = (self.scorer.window - 1) / (self._rate or 1.0)
        for j, end in enumerate(ends):
            self.metrics.inference.add(per_window_ms)
            self._scored(ScoredWindow(float(scores[j]), self.threshold, float(times[end]) - span, float(times[end]),
                                      t_rx, contrib[j]))

    def _scored(self, sw: ScoredWindow) -> None:
        self.metrics.windows += 1
        self.metrics.live_scores.append(sw.score)
        if self.on_window is not None:
            self.on_window(sw)
        event = self.alarms.update(sw.score, sw.threshold, now=sw.window_end, window_start=sw.window_start,
                                   window_end=sw.window_end, contributions=sw.contributions)
        if event is not None:
            self.metrics.events += 1
            self.on_event(event, sw)
