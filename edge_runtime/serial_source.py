"""Where decoded events come from: a serial port (live) or a file (replay).

Both are threads that only move data: bytes -> ``StreamDecoder.feed`` ->
``queue.put((t_rx, events))``. Windowing, inference and publishing happen in
other threads that take work from the queue.

* :class:`SerialSource` reads the port through firmware_bridge's
  :class:`~firmware_bridge.serial_reader.SerialReader` (``serial_for_url``: a
  device path, a pty, ``socket://``, ``spy://``; ``in_waiting or 1`` bytes at a
  time; exponential backoff), and when the port disappears puts a
  :class:`~edge_runtime.pipeline.StreamBreak` on the queue. A full queue never blocks the
  reader: the chunk is dropped, counted, and a break is queued before the next.
  One decoder lives across reconnects, so frames lost while the cable was out
  show up as a sequence gap in ``lost_frames``.
* :class:`ReplaySource` plays a serial capture (raw bytes) or a CSV data file
  as fast as the pipeline takes it, streaming: it reads the file a block at a
  time and keeps at most ``max_ahead`` chunks waiting on the queue, however
  large the queue is (the queue is sized for a live port's bursts; a file needs
  no read-ahead, and 1024 chunks of 64 rows of Python floats are ~20 MB). It
  blocks instead of dropping, so nothing is lost.
"""

from __future__ import annotations

import csv
import logging
import queue
import threading
import time
from pathlib import Path
from typing import Any

from edge_runtime.errors import DataError, require
from edge_runtime.pipeline import StreamBreak

__all__ = ["SerialSource", "ReplaySource", "make_decoder", "END"]

log = logging.getLogger(__name__)

#: Put on the queue by a source that has nothing more to give.
END = object()


def make_decoder(mode: str, channels: list[str], rate_hz: float | None) -> Any:
    protocol = require("firmware_bridge.protocol", "edge")
    return protocol.StreamDecoder(mode=mode, text_channels=tuple(channels), text_rate_hz=rate_hz)


class SerialSource:
    """The live source: firmware_bridge's :class:`SerialReader` (the one reader
    thread with reconnect and backoff) feeding the decoder and the queue."""

    def __init__(self, url: str, baud: int, decoder: Any, out: queue.Queue[Any], metrics: Any, *,
                 min_backoff: float = 0.05, max_backoff: float = 2.0) -> None:
        require("serial", "edge")  # fail at start with the pip extra named, not in the thread
        from firmware_bridge.serial_reader import SerialReader

        self.url = url
        self.decoder = decoder
        self.out = out
        self.metrics = metrics
        self.opened = threading.Event()
        self._pending_break: str | None = None
        self._was_open = False
        self._failure_logged = False
        self.reader = SerialReader(url, self._on_data, baudrate=baud, on_connect=self._on_connect,
                                   on_disconnect=self._on_disconnect, backoff=(min_backoff, max_backoff))

    def start(self) -> SerialSource:
        self.reader.start()
        return self

    def stop(self) -> None:
        self.reader.stop()

    def _on_connect(self, url: str) -> None:
        log.info("serial port %r open at %d baud", url, self.reader.baudrate)
        self._was_open = True
        self._failure_logged = False
        self.opened.set()

    def _on_disconnect(self, url: str, message: str) -> None:
        if self._was_open:
            # A port that was open went away: windows must not span the gap.
            self._was_open = False
            self.metrics.reconnects += 1
            self._pending_break = "reconnect"
            log.warning("serial port %s", message)
        elif not self._failure_logged:  # one line per outage, not one per retry
            self._failure_logged = True
            log.warning("serial port %s", message)

    def _on_data(self, data: bytes) -> None:
        events = self.decoder.feed(data)
        if events:
            self._put((time.monotonic(), events))

    def _put(self, item: Any) -> None:
        if self._pending_break is not None:
            try:
                self.out.put_nowait((time.monotonic(), [StreamBreak(self._pending_break)]))
                self._pending_break = None
            except queue.Full:
                self.metrics.queue_overflows += 1
                return
        try:
            self.out.put_nowait(item)
        except queue.Full:
            self.metrics.queue_overflows += 1
            self._pending_break = "overflow"


class ReplaySource(threading.Thread):
    """Plays a capture or CSV file into the queue, then puts :data:`END`.

    At most ``max_ahead`` chunks (``chunk`` CSV rows, or one 4 KiB read of a
    capture, each) wait on ``out`` at any time, so memory does not grow with
    the file or with the size of ``out``.
    """

    def __init__(self, path: Path, decoder: Any, out: queue.Queue[Any], *, channels: list[str],
                 rate_hz: float | None, chunk: int = 64, max_ahead: int = 8) -> None:
        if max_ahead < 1:
            raise ValueError(f"max_ahead must be >= 1 (got {max_ahead!r})")
        super().__init__(name="edgewatch-replay", daemon=True)
        self.path = Path(path)
        self.decoder = decoder
        self.out = out
        self.channels = channels
        self.rate_hz = rate_hz or 1.0
        self.chunk = chunk
        self.max_ahead = max_ahead
        self.stop_event = threading.Event()
        self.error: BaseException | None = None

    def stop(self) -> None:
        self.stop_event.set()

    def _wait_room(self) -> None:
        # Queue.get() notifies ``not_full`` after every item it takes, so this
        # wakes as soon as the inference thread has made room (no polling).
        q = self.out
        with q.not_full:
            while len(q.queue) >= self.max_ahead and not self.stop_event.is_set():
                q.not_full.wait(timeout=0.2)

    def _put(self, events: list[Any]) -> None:
        self._wait_room()
        while not self.stop_event.is_set():
            try:
                # No receive time: the file is infinitely fast, so the inference
                # thread stamps the events when it takes them (see Runtime).
                self.out.put((None, events), timeout=0.2)
                return
            except queue.Full:
                continue

    def run(self) -> None:
        try:
            if self.path.suffix.lower() in (".csv", ".txt", ".tsv"):
                self._csv()
            else:
                self._capture()
        except BaseException as err:  # noqa: BLE001 - handed to the main thread
            self.error = err
        finally:
            self.out.put(END)

    def _capture(self) -> None:
        with open(self.path, "rb") as fh:
            while not self.stop_event.is_set():
                data = fh.read(4096)
                if not data:
                    return
                events = self.decoder.feed(data)
                if events:
                    self._put(events)

    def _csv(self) -> None:
        from firmware_bridge.protocol import Hello, Samples

        with open(self.path, newline="") as fh:
            reader = csv.reader(fh, delimiter="\t" if self.path.suffix == ".tsv" else ",")
            header = next(reader, None)
            if header is None:
                raise DataError(f"--replay {str(self.path)!r} is empty; pass a CSV with a header row")
            header = [h.strip() for h in header]
            cols = [i for i, h in enumerate(header) if h in self.channels]
            names = tuple(header[i] for i in cols)
            self._put([Hello(device_id=f"replay:{self.path.name}", firmware="replay", channels=names,
                             units=("",) * len(names), sample_rate_hz=self.rate_hz, scales=(1.0,) * len(names))])
            block: list[tuple[float, ...]] = []
            row_no = 0
            first = 0
            for line_no, row in enumerate(reader, start=2):
                if self.stop_event.is_set():
                    return
                try:
                    block.append(tuple(float(row[i]) for i in cols))
                except (ValueError, IndexError) as err:
                    raise DataError(f"--replay {str(self.path)!r} line {line_no}: not a number in a channel column "
                                    f"({err}); fix or drop that row") from err
                row_no += 1
                if len(block) == self.chunk:
                    self._put([Samples(seq=first, device_time_us=round(first * 1e6 / self.rate_hz), channels=names,
                                       values=tuple(block))])
                    first, block = row_no, []
            if block:
                self._put([Samples(seq=first, device_time_us=round(first * 1e6 / self.rate_hz), channels=names,
                                   values=tuple(block))])
