"""Sliding windows: a batch function for files and a streaming buffer for the gateway.

Both produce the same windows for the same rows: the first window of a segment
ends at its ``window - 1``-th row, then one every ``stride`` rows. A window never
spans two segments (two engines, or the two sides of a gap in a stream).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["sliding_windows", "segment_bounds", "resegment", "WindowBuffer"]


def segment_bounds(segments: NDArray[Any] | None, n_rows: int) -> list[tuple[int, int]]:
    """Half-open row ranges ``[start, stop)`` of runs of equal segment id."""
    if segments is None or n_rows == 0:
        return [(0, n_rows)] if n_rows else []
    seg = np.asarray(segments)
    change = np.flatnonzero(seg[1:] != seg[:-1]) + 1
    starts = np.concatenate(([0], change))
    stops = np.concatenate((change, [n_rows]))
    return list(zip(starts.tolist(), stops.tolist()))


def resegment(segments: NDArray[Any], mask: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Segment ids of the rows kept by ``mask``, split wherever rows were removed."""
    idx = np.flatnonzero(mask)
    if len(idx) == 0:
        return np.empty(0, dtype=np.int64)
    seg = np.asarray(segments)[idx]
    breaks = np.r_[True, (np.diff(idx) != 1) | (seg[1:] != seg[:-1])]
    return (np.cumsum(breaks) - 1).astype(np.int64)


def sliding_windows(
    values: NDArray[Any],
    window: int,
    stride: int = 1,
    segments: NDArray[Any] | None = None,
) -> tuple[NDArray[Any], NDArray[np.int64]]:
    """Cut ``values`` (n_rows, n_channels) into windows (n_windows, window, n_channels).

    Returns the windows (a view where possible) and, for each, the row index of
    its last row. ``segments`` (n_rows,) marks rows that belong together;
    windows never cross a change of segment id.
    """
    values = np.asarray(values)
    parts: list[NDArray[Any]] = []
    ends: list[NDArray[np.int64]] = []
    for start, stop in segment_bounds(segments, len(values)):
        if stop - start < window:
            continue
        view = np.lib.stride_tricks.sliding_window_view(values[start:stop], window, axis=0)
        view = view[::stride].transpose(0, 2, 1)  # -> (n, window, channels)
        parts.append(view)
        ends.append(np.arange(start + window - 1, stop, stride, dtype=np.int64))
    if not parts:
        return np.empty((0, window, values.shape[1]), dtype=values.dtype), np.empty(0, dtype=np.int64)
    return np.concatenate(parts), np.concatenate(ends)


class WindowBuffer:
    """Streaming counterpart of :func:`sliding_windows` for one device.

    ``push`` a sample at a time; it returns a window (window, n_channels) when
    one is due, else ``None``. Call :meth:`reset` at any gap in the stream so
    that no window is spliced across it.

    >>> buf = WindowBuffer(window=3, stride=2, n_channels=1)
    >>> [buf.push([float(i)]) is not None for i in range(7)]
    [False, False, True, False, True, False, True]
    """

    def __init__(self, window: int, stride: int, n_channels: int) -> None:
        if window < 1 or stride < 1:
            raise ValueError(f"window and stride must be >= 1 (got window={window!r}, stride={stride!r})")
        self.window = window
        self.stride = stride
        # Twice the window so a window is always one contiguous slice: when
        # the write head reaches the end we copy the last window-1 rows back.
        self._buf = np.zeros((2 * window, n_channels), dtype=np.float64)
        self._len = 0
        self._seen = 0

    def reset(self) -> None:
        self._len = 0
        self._seen = 0

    def push(self, sample: Sequence[float] | NDArray[Any]) -> NDArray[np.float64] | None:
        if self._len == len(self._buf):
            keep = self.window - 1
            self._buf[:keep] = self._buf[self._len - keep:self._len]
            self._len = keep
        self._buf[self._len] = sample
        self._len += 1
        self._seen += 1
        if self._seen >= self.window and (self._seen - self.window) % self.stride == 0:
            return self._buf[self._len - self.window:self._len].copy()
        return None
