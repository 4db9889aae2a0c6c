"""Sans-IO decoder of the text mode: one sample per line, for plain
``Serial.println`` sketches.

A line holds numbers separated by commas, tabs or spaces. Lines starting with
``ERR`` are device errors, lines starting with ``#`` device messages; a line of
names (before any sample) is a header that names the channels. Text has no
sequence numbers or timestamps, so times come from the configured rate (never
guessed from arrival times) and a malformed line is taken to be one lost sample,
which keeps later samples at the right time.
"""

from __future__ import annotations

import math
import re

from firmware_bridge._events import (
    RAW_LIMIT,
    DecodeError,
    DecoderStats,
    DeviceMessage,
    Event,
    Gap,
    Hello,
    Samples,
)

__all__ = ["TextDecoder"]

_SPLIT = re.compile(r"[,\t ]+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-/\[\]]*\Z")


class TextDecoder:
    """Decode text-mode lines incrementally.

    Parameters
    ----------
    channels : tuple of str, optional
        Channel names, in column order. Without them (and without a header
        line), :class:`Samples` carry ``channels=None``.
    rate_hz : float, optional
        Sample rate; sample ``n`` is at ``n / rate_hz`` seconds. Without it,
        ``Samples.device_time_us`` is -1.
    max_line_len : int
        Longer lines are discarded (a line that never ends must not grow the buffer).
    stats : DecoderStats, optional
        Counters to update (lets :class:`StreamDecoder` share one object).

    Examples
    --------
    >>> dec = TextDecoder(channels=("x", "y"), rate_hz=10.0)
    >>> dec.feed(b"1,2\\n3 4\\n")[0].values
    ((1.0, 2.0), (3.0, 4.0))
    """

    def __init__(
        self,
        *,
        channels: tuple[str, ...] | None = None,
        rate_hz: float | None = None,
        max_line_len: int = 1024,
        stats: DecoderStats | None = None,
    ) -> None:
        if rate_hz is not None and not (math.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"rate_hz must be a positive number (got {rate_hz!r})")
        self.channels = tuple(channels) if channels is not None else None
        self.rate_hz = rate_hz
        self.max_line_len = max_line_len
        self.stats = stats if stats is not None else DecoderStats()
        self._buf = bytearray()
        self._discarding = False
        self._index = 0  # sample index of the next line
        self._lost = 0  # lines lost since the last delivered sample
        self._n_cols = len(self.channels) if self.channels else None
        self._rows: list[tuple[float, ...]] = []
        self._first = 0

    @property
    def buffered(self) -> int:
        """Bytes of an unfinished line held (at most ``max_line_len``)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Event]:
        """Consume ``data``; return the events of every completed line. Never raises."""
        events: list[Event] = []
        self.stats.bytes_in += len(data)
        buf = self._buf
        buf += data
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            line = bytes(buf[start:end])
            start = end + 1
            if self._discarding:  # the tail of an over-long line
                self._discarding = False
                continue
            self._line(line.rstrip(b"\r"), events)
        del buf[:start]
        if len(buf) > self.max_line_len:
            self._error(bytes(buf), events)
            buf.clear()
            self._discarding = True
        self._flush(events)
        return events

    def _flush(self, events: list[Event]) -> None:
        # Consecutive sample lines become one Samples event; anything else
        # flushes them first, so the caller sees events in wire order.
        if self._rows:
            t = round(self._first * 1e6 / self.rate_hz) if self.rate_hz else -1
            events.append(Samples(self._first, t, self.channels, tuple(self._rows)))
            self.stats.samples += len(self._rows)
            self._rows = []

    def _error(self, raw: bytes, events: list[Event]) -> None:
        self._flush(events)
        st = self.stats
        st.text_errors += 1
        st.resyncs += 1
        self._lost += 1
        self._index += 1  # assume the bad line was one sample: keeps later times right
        events.append(DecodeError("text", raw[:RAW_LIMIT]))

    def _line(self, line: bytes, events: list[Event]) -> None:
        text = line.strip()
        if not text:
            return
        try:
            s = text.decode("ascii")
        except UnicodeDecodeError:
            self._error(line, events)
            return
        if s.startswith(("ERR", "#")):
            self._flush(events)
            is_err = s.startswith("ERR")
            self.stats.device_errors += is_err
            events.append(DeviceMessage(s, is_err))
            return
        fields = _SPLIT.split(s)
        try:
            row = tuple(float(f) for f in fields)
        except ValueError:
            is_names = all(_NAME.match(f) for f in fields)
            if is_names and (self._index == 0 or len(fields) == self._n_cols):
                self._header(tuple(fields), events)
            else:
                self._error(line, events)
            return
        if self._n_cols is None:
            self._n_cols = len(row)
        if len(row) != self._n_cols or not all(map(math.isfinite, row)):
            self._error(line, events)
            return
        if self._lost:
            self._flush(events)
            self.stats.lost_frames += self._lost
            events.append(Gap(self._lost, "resync"))
            self._lost = 0
        if not self._rows:
            self._first = self._index
        self._rows.append(row)
        self._index += 1

    def _header(self, names: tuple[str, ...], events: list[Event]) -> None:
        # The device's own names win over configuration: the caller compares
        # the Hello with what it expects and refuses to mis-map channels.
        self._flush(events)
        if self._index > 0:
            # Sketches print their header in setup(): seeing it again mid-stream
            # means the board rebooted, so sample times restart at zero.
            self.stats.resets += 1
            events.append(Gap(0, "reset"))
            self._index = 0
            self._lost = 0
        self.channels = names
        self._n_cols = len(names)
        events.append(
            Hello(
                device_id="text",
                firmware="",
                channels=names,
                units=("",) * len(names),
                sample_rate_hz=float(self.rate_hz or 0.0),
                scales=(1.0,) * len(names),
                sample_format=0,
            )
        )
