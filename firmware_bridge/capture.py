"""Record raw serial bytes with host timestamps, and replay them deterministically.

File format (little-endian)::

    b"EWCAP1\\n"                      magic
    <JSON metadata>\\n                port, baud rate, start time (one line)
    records: f64 host_time_s, u32 n, n bytes   (repeated until end of file)

Host times are wall-clock seconds (``time.time()``). Replay feeds the recorded
chunks, in order and with the same boundaries, to a decoder: the same capture
always yields the same events. A truncated last record (the recorder was
killed mid-write) is ignored.
"""

from __future__ import annotations

import json
import os
import struct
import threading
import time
from collections.abc import Iterator
from typing import IO, Any

from firmware_bridge._events import Event
from firmware_bridge._stream import StreamDecoder

__all__ = ["MAGIC", "CaptureWriter", "read_capture", "replay"]

MAGIC = b"EWCAP1\n"
_RECORD = struct.Struct("<dI")


class CaptureWriter:
    """Append timestamped chunks to a capture file (thread-safe).

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "c.ewcap")
    >>> with CaptureWriter(path, {"port": "loop://"}) as cap:
    ...     cap.write(b"abc", t=1.0)
    >>> list(read_capture(path))
    [(1.0, b'abc')]
    """

    def __init__(self, path: str | os.PathLike[str], meta: dict[str, Any] | None = None) -> None:
        self.path = os.fspath(path)
        self._f: IO[bytes] = open(self.path, "wb")
        self._lock = threading.Lock()
        self.bytes_written = 0
        self.records = 0
        header = {"started": time.time(), **(meta or {})}
        self._f.write(MAGIC + json.dumps(header).encode() + b"\n")
        self._f.flush()

    def write(self, data: bytes, t: float | None = None) -> None:
        """Record ``data`` as received at host time ``t`` (default: now)."""
        if not data:
            return
        with self._lock:
            self._f.write(_RECORD.pack(time.time() if t is None else t, len(data)) + data)
            self.bytes_written += len(data)
            self.records += 1

    def flush(self) -> None:
        """Push buffered records to the OS (the recorder calls this periodically)."""
        with self._lock:
            self._f.flush()

    def close(self) -> None:
        """Flush and close the file."""
        with self._lock:
            if not self._f.closed:
                self._f.close()

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata line of a capture.

    Raises
    ------
    ValueError
        If the file is not an edgewatch capture.
    """
    with open(path, "rb") as f:
        return _header(f, os.fspath(path))


def _header(f: IO[bytes], path: str) -> dict[str, Any]:
    if f.read(len(MAGIC)) != MAGIC:
        raise ValueError(f"{path!r} is not an edgewatch capture (no {MAGIC!r} magic); record one with 'edgewatch capture'")
    try:
        return json.loads(f.readline())
    except ValueError as err:
        raise ValueError(f"{path!r} has a damaged capture header; record it again") from err


def read_capture(path: str | os.PathLike[str]) -> Iterator[tuple[float, bytes]]:
    """Yield ``(host_time_s, chunk)`` records in the order they were received."""
    with open(path, "rb") as f:
        _header(f, os.fspath(path))
        while True:
            head = f.read(_RECORD.size)
            if len(head) < _RECORD.size:
                return
            t, n = _RECORD.unpack(head)
            data = f.read(n)
            if len(data) < n:
                return
            yield t, data


def replay(path: str | os.PathLike[str], decoder: Any | None = None) -> tuple[list[Event], Any]:
    """Feed a capture through ``decoder`` (default: an auto-detecting
    :class:`StreamDecoder`) and return ``(events, decoder.stats)``."""
    dec = decoder if decoder is not None else StreamDecoder()
    events: list[Event] = []
    for _, chunk in read_capture(path):
        events += dec.feed(chunk)
    return events, dec.stats
