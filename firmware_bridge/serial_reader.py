"""Read a serial port in a thread and hand the raw bytes on; nothing else.

The thread only moves bytes (``in_waiting or 1`` per read, never
``readline``): decoding, windowing and scoring happen in the consumer, so a
slow consumer can never make the kernel drop bytes. When the port does not
exist or disappears, the reader reports it once per outage and retries with
exponential backoff; it never lets a traceback escape.

pyserial is imported lazily, inside :meth:`SerialReader.run`, so importing this
module stays standard-library only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["SerialReader"]

log = logging.getLogger(__name__)


class SerialReader:
    """A thread that reads ``url`` and calls ``on_data(bytes)`` for every chunk.

    Parameters
    ----------
    url : str
        A pyserial URL (``socket://host:port``, ``spy:///dev/ttyUSB0``,
        ``loop://``) or a device path (``/dev/ttyACM0``, a pty path).
    on_data : callable
        Called from the reader thread with each chunk. Keep it short: put the
        bytes (or the decoder's events) on a queue.
    baudrate : int
    on_connect, on_disconnect : callable, optional
        ``on_connect(url)``; ``on_disconnect(url, message)`` with a one-line,
        human-readable reason (also used for failed attempts to connect).
    backoff : (float, float)
        First and largest delay between reconnection attempts; doubles each time.
    read_timeout : float
        Serial read timeout, which bounds how long :meth:`stop` waits.

    Examples
    --------
    >>> import queue
    >>> q = queue.Queue()
    >>> r = SerialReader("loop://", q.put).start()
    >>> r.wait_connected(5.0)
    True
    >>> r.write(b"ping"); q.get(timeout=5.0)
    b'ping'
    >>> r.stop()
    """

    def __init__(
        self,
        url: str,
        on_data: Callable[[bytes], None],
        *,
        baudrate: int = 921600,
        on_connect: Callable[[str], None] | None = None,
        on_disconnect: Callable[[str, str], None] | None = None,
        backoff: tuple[float, float] = (0.1, 5.0),
        read_timeout: float = 0.1,
    ) -> None:
        if not 0 < backoff[0] <= backoff[1]:
            raise ValueError(f"backoff must be (first, largest) with 0 < first <= largest (got {backoff!r})")
        self.url = url
        self.baudrate = baudrate
        self._on_data = on_data
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self._backoff = backoff
        self._read_timeout = read_timeout
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._lock = threading.Lock()
        self._port: Any = None
        self._thread: threading.Thread | None = None
        self.connects = 0
        self.disconnects = 0
        self.bytes_read = 0

    def start(self) -> SerialReader:
        """Start the reader thread; returns self."""
        self._thread = threading.Thread(target=self.run, name=f"serial-reader {self.url}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop reading, close the port and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def connected(self) -> bool:
        """Whether the port is open right now."""
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        """Block until the port is open (True) or ``timeout`` passes (False)."""
        return self._connected.wait(timeout)

    def write(self, data: bytes) -> None:
        """Write to the port (serialised with a lock); silently dropped while disconnected."""
        with self._lock:
            if self._port is not None:
                self._port.write(data)

    def run(self) -> None:
        """The thread body: connect, read until error, back off, repeat until stopped."""
        import serial  # lazy: pyserial is part of the 'edge' extra

        delay = self._backoff[0]
        while not self._stop.is_set():
            try:
                port = serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=self._read_timeout)
            except (serial.SerialException, OSError, ValueError) as err:
                self._notify(self._on_disconnect, self.url, f"cannot open {self.url!r}: {_reason(err)}; retrying in {delay:.1f} s")
                self._stop.wait(delay)
                delay = min(delay * 2, self._backoff[1])
                continue
            delay = self._backoff[0]
            with self._lock:
                self._port = port
            self.connects += 1
            self._connected.set()
            self._notify(self._on_connect, self.url)
            reason = self._read_until_error(port, serial)
            self._connected.clear()
            with self._lock:
                self._port = None
                try:
                    port.close()
                except Exception:  # noqa: BLE001 - closing a vanished port may fail in many ways
                    pass
            if reason is not None:
                self.disconnects += 1
                self._notify(self._on_disconnect, self.url, f"{self.url!r} went away: {reason}; reconnecting")

    def _read_until_error(self, port: Any, serial: Any) -> str | None:
        while not self._stop.is_set():
            try:
                data = port.read(port.in_waiting or 1)
            except (serial.SerialException, OSError, TypeError) as err:
                # TypeError: pyserial's posix backend on a closed fd.
                return _reason(err)
            if data:
                self.bytes_read += len(data)
                # User code gets its own try/except so a bug there does not
                # look like (or cause) a lost port.
                try:
                    self._on_data(data)
                except Exception:  # noqa: BLE001
                    log.exception("on_data callback failed; data was dropped")
        return None

    def _notify(self, callback: Callable[..., None] | None, *args: Any) -> None:
        if callback is None:
            if len(args) > 1:
                log.warning("%s", args[1])
            return
        try:
            callback(*args)
        except Exception:  # noqa: BLE001
            log.exception("serial reader callback failed")


def _reason(err: BaseException) -> str:
    text = getattr(err, "strerror", None) or str(err) or type(err).__name__
    return text.splitlines()[0]


def reconnect_delays(first: float, largest: float, n: int) -> list[float]:
    """The first ``n`` delays the reader waits between attempts (for docs and tests)."""
    out, d = [], first
    for _ in range(n):
        out.append(d)
        d = min(d * 2, largest)
    return out

