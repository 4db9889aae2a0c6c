"""A simulated sensor board: plays a source into a pseudo-terminal (or a port)
with injected line faults, and logs exactly what it injected.

The fault log (JSON lines) is the ground truth tests compare with a decoder's
counters. Only frames between two intact frames of the same boot can be seen
as lost by *any* decoder, so the simulator also counts those separately
(``truth["lost_detectable"]``).
"""

from __future__ import annotations

import json
import math
import os
import random
import fcntl
import select
import termios
import threading
import time
import tty
from dataclasses import dataclass
from typing import IO, Any

from firmware_bridge._wire import DEFAULT_MAX_FRAME_LEN, SampleFormat, encode_heartbeat, encode_hello, encode_samples, quantize
from firmware_bridge.errors import PortError
from firmware_bridge.sources import Source

__all__ = ["LineFaults", "Simulator"]


@dataclass(frozen=True)
class LineFaults:
    """Faults injected on the line.

    Attributes
    ----------
    bit_error_rate : float
        Probability that any one bit on the wire is flipped.
    drop_rate : float
        Probability that a whole frame (or text line) is never sent.
    disconnect_every : float or None
        Seconds of playback between disconnects: the line goes silent for
        ``disconnect_for`` seconds and the board reboots (new boot id, sequence
        and clock from zero, HELLO). With a ``link`` path the pseudo-terminal
        itself goes away and comes back, as a USB adapter would.
    """

    bit_error_rate: float = 0.0
    drop_rate: float = 0.0
    disconnect_every: float | None = None
    disconnect_for: float = 0.5

    def __post_init__(self) -> None:
        for name in ("bit_error_rate", "drop_rate"):
            p = getattr(self, name)
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1) (got {p!r})")
        if self.disconnect_every is not None and not self.disconnect_every > 0:
            raise ValueError(f"disconnect_every must be a positive number of seconds (got {self.disconnect_every!r})")


class Simulator:
    """Play ``source`` as a board would, over a pty or an existing port.

    Parameters
    ----------
    source : Source
    mode : {"binary", "text"}
    sample_format : SampleFormat, optional
        Default: FLOAT32 for recorded sources (values arrive as float32 of the
        file's values, bit for bit), INT16 with a per-channel scale for synthetic data.
    samples_per_frame : int, optional
        Default: about 50 frames per second, within the frame size limit.
    faults : LineFaults
    realtime : bool
        Pace samples at the source rate; otherwise write as fast as the reader takes them.
    port : str, optional
        Write to this existing device instead of opening a pseudo-terminal.
    link : str, optional
        Keep a symlink at this path pointing at the current pty.
    fault_log : str or file, optional
        Where to write the JSON-lines fault log.
    loop : bool
        Replay the source forever (until :meth:`stop`).
    drain_timeout : float
        At the end, wait this long for a reader to take what is still buffered
        in the pty before the simulator may close it.

    Attributes
    ----------
    truth : dict
        Counters of what was sent and injected (see ``fault log`` in PROTOCOL.md).
    done : threading.Event
        Set when playback has finished or stopped.

    Examples
    --------
    >>> from firmware_bridge.sources import load_source
    >>> with Simulator(load_source("synthetic", seconds=0.1), realtime=False) as sim:
    ...     sim.port_path.startswith("/dev/")
    True
    """

    def __init__(
        self,
        source: Source,
        *,
        mode: str = "binary",
        sample_format: int | None = None,
        samples_per_frame: int | None = None,
        faults: LineFaults = LineFaults(),
        realtime: bool = True,
        port: str | None = None,
        link: str | None = None,
        fault_log: str | IO[str] | None = None,
        seed: int = 0,
        device_id: str = "sim-1",
        hello_every: float = 1.0,
        loop: bool = False,
        drain_timeout: float = 10.0,
    ) -> None:
        if mode not in ("binary", "text"):
            raise ValueError(f"mode must be 'binary' or 'text' (got {mode!r})")
        self.source = source
        self.mode = mode
        self.sample_format = sample_format or (SampleFormat.FLOAT32 if source.exact else SampleFormat.INT16)
        n_ch = len(source.channels)
        size = {SampleFormat.INT16: 2, SampleFormat.FLOAT32: 4, SampleFormat.FLOAT64: 8}[self.sample_format]
        fit = (DEFAULT_MAX_FRAME_LEN - 32) // (n_ch * size)
        self.samples_per_frame = max(1, min(fit, samples_per_frame or max(1, round(source.rate_hz / 50))))
        self.faults = faults
        self.realtime = realtime
        self.link = link
        self.hello_every = hello_every
        self.loop = loop
        self.drain_timeout = drain_timeout
        self.device_id = device_id
        self._rng = random.Random(seed)
        self._scales = self._choose_scales() if self.sample_format == SampleFormat.INT16 else (1.0,) * n_ch
        self._stop = threading.Event()
        self.done = threading.Event()
        self._thread: threading.Thread | None = None
        self._own_log = isinstance(fault_log, str)
        self._log: IO[str] | None = open(fault_log, "w", encoding="utf-8") if isinstance(fault_log, str) else fault_log
        self.truth: dict[str, int] = dict.fromkeys(
            ("frames_sent", "frames_dropped", "frames_corrupted", "bits_flipped", "resets", "samples_sent",
             "lost_detectable", "resets_detectable", "overflow"), 0)
        self._bits_sent = 0
        self._next_flip = self._flip_gap()
        self._pending_lost = 0
        self._seen_intact = False
        self._last_intact_boot: int | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._boot_id = self._rng.getrandbits(32)
        self._seq = 0
        self._booted = False  # the first boot keeps the ids above
        self._port = port
        self._open()

    # -- port handling -----------------------------------------------------------
    def _open(self) -> None:
        if self._port is not None:
            try:
                fd = os.open(self._port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
            except OSError as err:
                raise PortError(f"cannot open port {self._port!r}: {err.strerror}; check the path and permissions") from err
            if os.isatty(fd):
                tty.setraw(fd)
            self._master = fd
            self.port_path = self._port
            return
        master, slave = os.openpty()
        # Raw mode: no echo, no CR/LF translation, no XON/XOFF eating 0x11/0x13.
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.port_path = os.ttyname(slave)
        if self.link:
            tmp = f"{self.link}.tmp{os.getpid()}"
            os.symlink(self.port_path, tmp)
            os.replace(tmp, self.link)
            self.port_path = self.link

    def _close_port(self) -> None:
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None
        if self.link and self._port is None and os.path.islink(self.link):
            os.unlink(self.link)

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> Simulator:
        """Play in a background thread; returns self."""
        self._thread = threading.Thread(target=self.run, name="edgewatch-simulator", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Ask playback to end and wait for it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def close(self) -> None:
        """Stop and release the port and the fault log."""
        self.stop()
        self._close_port()
        if self._own_log and self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- playback ----------------------------------------------------------------
    def run(self) -> dict[str, int]:
        """Play the source (blocking) and return the truth counters."""
        try:
            self._play()
        finally:
            self._note({"event": "end", **self.truth})
            if self._log is not None:
                self._log.flush()
            self.done.set()
        return self.truth

    def _pending_input(self) -> int:
        """Bytes written to the pty that no reader has taken yet."""
        if self._slave is None:
            return 0
        buf = fcntl.ioctl(self._slave, termios.FIONREAD, b"\0\0\0\0")
        return int.from_bytes(buf, "little")

    def _wait_drained(self, timeout: float) -> bool:
        """Wait until the reader has taken everything (empty for 0.1 s running).

        The kernel moves bytes from the master to the slave's queue
        asynchronously, so one empty reading right after a write proves nothing.
        """
        deadline = time.monotonic() + timeout
        empty_since = None
        while time.monotonic() < deadline:
            now = time.monotonic()
            if self._pending_input():
                empty_since = None
            elif empty_since is None:
                empty_since = now
            elif now - empty_since >= 0.1:
                return True
            if self._stop.wait(0.01):
                return False
        return False

    def _play(self) -> None:
        if not self.realtime and self._slave is not None:
            # As fast as possible means as fast as a reader takes it, so wait
            # for one: opening the port with pyserial flushes (or reads) this
            # first HELLO, which the boot below sends again.
            if self.mode == "binary":
                self._send_hello(0)
            else:
                self._send(",".join(self.source.channels).encode() + b"\n", "header", 0)
            self._wait_drained(math.inf)
            # pyserial flushes the input queue while it opens the port (after
            # the moment we see the queue empty): give it time to finish so the
            # playback proper is not flushed too.
            self._stop.wait(0.3)
        self._play_rows()
        if self._slave is not None:
            self._wait_drained(self.drain_timeout)

    def _play_rows(self) -> None:
        rows = self.source.rows
        rate = self.source.rate_hz
        spf = self.samples_per_frame
        period = 1.0 / rate
        t0 = time.monotonic()
        played = 0  # samples of playback time elapsed (drives pacing and disconnects)
        next_disconnect = self.faults.disconnect_every
        while not self._stop.is_set():
            self._boot()
            k = 0  # samples since boot
            last_hello = 0.0
            while not self._stop.is_set():
                if played >= len(rows) and not self.loop:
                    return
                if next_disconnect is not None and played * period >= next_disconnect:
                    next_disconnect += self.faults.disconnect_every or 0.0
                    self._disconnect()
                    played += round(self.faults.disconnect_for * rate)
                    break
                if self.mode == "binary" and (k * period - last_hello) >= self.hello_every:
                    last_hello = k * period
                    self._send_hello(k)
                    self._send(encode_heartbeat(self._seq, round(k * 1e6 / rate)), "heartbeat", 0)
                block = [rows[(played + j) % len(rows)] for j in range(spf)
                         if self.loop or played + j < len(rows)]
                if self.realtime:
                    self._stop.wait(max(0.0, t0 + played * period - time.monotonic()))
                self._send_samples(k, block)
                k += len(block)
                played += len(block)

    def _boot(self) -> None:
        if self._booted:
            self._boot_id = self._rng.getrandbits(32)
            self._seq = 0
        self._booted = True
        self._pending_lost = 0  # losses at the tail of the old boot are unknowable
        if self.mode == "binary":
            self._send_hello(0)
        else:
            self._send(",".join(self.source.channels).encode() + b"\n", "header", 0)

    def _disconnect(self) -> None:
        self.truth["resets"] += 1
        self._note({"event": "disconnect", "seconds": self.faults.disconnect_for, "relink": bool(self.link)})
        # The outage itself needs no wait here: playback time advances past it
        # and the realtime pacing keeps the line silent until it is over.
        if self.link and self._port is None:
            self._close_port()
            if self.realtime:
                self._stop.wait(self.faults.disconnect_for)
            self._open()

    def _send_hello(self, k: int) -> None:
        src = self.source
        wire = encode_hello(
            self._seq, round(k * 1e6 / src.rate_hz), device_id=self.device_id, firmware="edgewatch-sim 1",
            channels=src.channels, units=src.units, sample_rate_hz=src.rate_hz, scales=self._scales,
            boot_id=self._boot_id, sample_format=self.sample_format,
        )
        self._send(wire, "hello", 0)

    def _send_samples(self, k: int, block: list[tuple[float, ...]]) -> None:
        if not block:
            return
        if self.mode == "text":
            for row in block:
                self._send((",".join(map(repr, row)) + "\n").encode(), "line", 1)
            return
        values = [quantize(r, self._scales) for r in block] if self.sample_format == SampleFormat.INT16 else block
        t_us = round(k * 1e6 / self.source.rate_hz)
        self._send(encode_samples(self._seq, t_us, values, sample_format=self.sample_format), "samples", len(block))

    def _choose_scales(self) -> tuple[float, ...]:
        # Full scale = 4x the largest magnitude seen, so faults that grow the
        # signal do not clip; a power of two keeps the scale exact in float32.
        n_ch = len(self.source.channels)
        peak = [max((abs(r[c]) for r in self.source.rows), default=1.0) or 1.0 for c in range(n_ch)]
        return tuple(2.0 ** math.ceil(math.log2(4 * p / 32767)) for p in peak)

    # -- the line ------------------------------------------------------------------
    def _flip_gap(self) -> float:
        p = self.faults.bit_error_rate
        if p <= 0:
            return math.inf
        return math.floor(math.log(1.0 - self._rng.random()) / math.log1p(-p))

    def _send(self, wire: bytes, kind: str, n_samples: int) -> None:
        seq = self._seq if self.mode == "binary" else None
        if self.mode == "binary" and kind != "header":
            self._seq = (self._seq + 1) & 0xFFFF
        self.truth["frames_sent"] += 1
        if self._rng.random() < self.faults.drop_rate:
            self.truth["frames_dropped"] += 1
            self._lost()
            self._note({"event": "drop", "kind": kind, "seq": seq, "samples": n_samples})
            return
        flips = []
        end = self._bits_sent + 8 * len(wire)
        while self._next_flip < end:
            flips.append(int(self._next_flip - self._bits_sent))
            self._next_flip += 1 + self._flip_gap()
        self._bits_sent = end
        if flips:
            buf = bytearray(wire)
            for bit in flips:
                buf[bit // 8] ^= 1 << (bit % 8)
            wire = bytes(buf)
            self.truth["frames_corrupted"] += 1
            self.truth["bits_flipped"] += len(flips)
            self._lost()
            self._note({"event": "corrupt", "kind": kind, "seq": seq, "bits": len(flips), "samples": n_samples})
        if not self._write(wire):
            self.truth["overflow"] += 1
            if not flips:
                self._lost()
            self._note({"event": "overflow", "kind": kind, "seq": seq, "samples": n_samples})
            return
        if not flips:
            self._intact(n_samples)

    def _lost(self) -> None:
        self._pending_lost += 1

    def _intact(self, n_samples: int) -> None:
        self.truth["samples_sent"] += n_samples
        if self._seen_intact:
            self.truth["lost_detectable"] += self._pending_lost
            if self._last_intact_boot != self._boot_id:
                self.truth["resets_detectable"] += 1
        self._pending_lost = 0
        self._seen_intact = True
        self._last_intact_boot = self._boot_id

    def _write(self, wire: bytes) -> bool:
        """Write all of ``wire``; False if the reader stalled (realtime mode only)."""
        view = memoryview(wire)
        deadline = time.monotonic() + 1.0
        while view and not self._stop.is_set():
            fd = self._master
            if fd is None:
                return False
            try:
                n = os.write(fd, view)
                view = view[n:]
                continue
            except BlockingIOError:
                pass
            except OSError as err:
                raise PortError(f"writing to {self.port_path!r} failed: {err.strerror}") from err
            if self.realtime and time.monotonic() > deadline:
                return False
            select.select([], [fd], [], 0.05)
        return not view

    def _note(self, record: dict[str, Any]) -> None:
        if self._log is not None:
            self._log.write(json.dumps(record) + "\n")
