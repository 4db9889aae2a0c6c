"""Sans-IO decoder of the binary protocol: bytes in, events out.

The decoder never touches a port, a clock or a thread, and never raises on
what comes down the wire: a bad chunk becomes a :class:`DecodeError` plus a
counter, and decoding restarts at the next ``0x00`` delimiter.
"""

from __future__ import annotations

import operator
import struct

from firmware_bridge import _cobs
from firmware_bridge._events import (
    RAW_LIMIT,
    DecodeError,
    DecoderStats,
    Event,
    Gap,
    Heartbeat,
    Hello,
    Samples,
)
from firmware_bridge._wire import (
    CRC_LEN,
    DEFAULT_MAX_FRAME_LEN,
    FORMAT_CODES,
    HEADER,
    HEADER_LEN,
    HELLO_HEADER,
    PROTOCOL_VERSION,
    SAMPLES_HEADER,
    FrameType,
    crc32,
)

__all__ = ["FrameDecoder"]

_U32 = struct.Struct("<I")
_F32 = struct.Struct("<f")


class _Malformed(Exception):
    """Internal: a CRC-valid payload whose content is inconsistent."""


class FrameDecoder:
    """Decode the binary protocol incrementally.

    Parameters
    ----------
    max_frame_len : int
        Largest decoded frame (header + payload + CRC) accepted. Longer runs of
        bytes without a delimiter are discarded as ``"oversize"``, so the
        buffer never holds more than about ``max_frame_len`` bytes.

    Attributes
    ----------
    stats : DecoderStats
        Running counters.
    hello : Hello or None
        The HELLO that currently describes the channels.

    Examples
    --------
    >>> from firmware_bridge.protocol import FrameDecoder, encode_heartbeat
    >>> dec = FrameDecoder()
    >>> dec.feed(encode_heartbeat(7, 1000))
    [Heartbeat(seq=7, device_time_us=1000)]
    """

    def __init__(self, *, max_frame_len: int = DEFAULT_MAX_FRAME_LEN) -> None:
        if max_frame_len < HEADER_LEN + CRC_LEN:
            raise ValueError(f"max_frame_len must be at least {HEADER_LEN + CRC_LEN} (got {max_frame_len!r})")
        self.max_frame_len = max_frame_len
        self._max_encoded = _cobs.max_encoded_len(max_frame_len)
        self.stats = DecoderStats()
        self.hello: Hello | None = None
        self._buf = bytearray()
        self._discarding = False  # inside an oversize run: skip to the next delimiter
        self._expect_seq: int | None = None
        self._last_time = -1
        self._dirty = False  # garbage was skipped since the last good frame
        self._unpackers: dict[tuple[int, int, int], tuple[struct.Struct, tuple[float, ...] | None]] = {}

    @property
    def buffered(self) -> int:
        """Bytes held while waiting for a delimiter (at most ~``max_frame_len``)."""
        return len(self._buf)

    # -- input -------------------------------------------------------------
    def feed(self, data: bytes) -> list[Event]:
        """Consume ``data`` and return the events it completes (possibly none).

        Bytes after the last delimiter stay buffered for the next call; ``b""``
        is a no-op. Never raises on wire content.
        """
        events: list[Event] = []
        self.stats.bytes_in += len(data)
        buf = self._buf
        buf += data
        start = 0
        while True:
            end = buf.find(0, start)
            if end < 0:
                break
            if self._discarding:
                self._discarding = False
            elif end > start:
                self._chunk(bytes(buf[start:end]), events)
            start = end + 1
        if start:
            del buf[:start]
        if len(buf) > self._max_encoded:
            # No delimiter within any legal frame length: this cannot become a
            # frame, so drop it now instead of letting the buffer grow.
            self._bad("oversize", bytes(buf[:RAW_LIMIT]), events)
            self.stats.oversize += 1
            buf.clear()
            self._discarding = True
        return events

    # -- one chunk between delimiters -----------------------------------------
    def _bad(self, reason: str, raw: bytes, events: list[Event]) -> None:
        self.stats.resyncs += 1
        self._dirty = True
        events.append(DecodeError(reason, raw[:RAW_LIMIT]))

    def _chunk(self, enc: bytes, events: list[Event]) -> None:
        st = self.stats
        if len(enc) > self._max_encoded:
            st.oversize += 1
            self._bad("oversize", enc, events)
            return
        try:
            frame = _cobs.decode(enc)
        except _cobs.CobsError:
            st.cobs_errors += 1
            self._bad("cobs", enc, events)
            return
        if len(frame) < HEADER_LEN + CRC_LEN:
            st.short_frames += 1
            self._bad("short", enc, events)
            return
        if crc32(frame[:-CRC_LEN]) != _U32.unpack_from(frame, len(frame) - CRC_LEN)[0]:
            st.crc_errors += 1
            self._bad("crc", enc, events)
            return
        version, ftype, seq, t_us = HEADER.unpack_from(frame)
        if version != PROTOCOL_VERSION:
            # The header layout may differ in another version: skip the frame
            # without trusting its seq or time.
            st.unknown_version += 1
            events.append(DecodeError("version", frame[:RAW_LIMIT]))
            return
        body = frame[HEADER_LEN:-CRC_LEN]
        if ftype == FrameType.HELLO:
            self._on_hello(seq, t_us, body, frame, events)
            return
        if ftype not in (FrameType.SAMPLES, FrameType.HEARTBEAT):
            # A v1 header is trustworthy: keep the sequence continuous so a
            # frame type we do not know does not look like a lost frame.
            st.unknown_type += 1
            self._track(seq, t_us, events)
            events.append(DecodeError("type", frame[:RAW_LIMIT]))
            return
        st.frames_ok += 1
        self._track(seq, t_us, events)
        if ftype == FrameType.HEARTBEAT:
            events.append(Heartbeat(seq, t_us))
            return
        if self.hello is None:
            st.awaiting_hello += 1
            return
        try:
            values = self._samples(body)
        except _Malformed:
            st.format_errors += 1
            self._gap(1, "resync", events)
            events.append(DecodeError("format", frame[:RAW_LIMIT]))
            return
        st.samples += len(values)
        events.append(Samples(seq, t_us, self.hello.channels, values))

    # -- sequence and reset tracking -----------------------------------------
    def _gap(self, lost: int, reason: str, events: list[Event]) -> None:
        self.stats.lost_frames += lost
        events.append(Gap(lost, reason))

    def _reset(self, seq: int, events: list[Event]) -> None:
        self.stats.resets += 1
        # Frames 0..seq-1 of the new boot never arrived; the tail of the old
        # boot is unknowable. The old HELLO no longer describes the device.
        self.hello = None
        self._gap(seq, "reset", events)

    def _track(self, seq: int, t_us: int, events: list[Event], *, reset: bool = False) -> None:
        if self._expect_seq is not None:
            if reset or t_us < self._last_time:
                self._reset(seq, events)
            else:
                lost = (seq - self._expect_seq) & 0xFFFF
                if lost:
                    self._gap(lost, "resync" if self._dirty else "sequence", events)
        self._expect_seq = (seq + 1) & 0xFFFF
        self._last_time = t_us
        self._dirty = False

    # -- payloads ---------------------------------------------------------------
    def _on_hello(self, seq: int, t_us: int, body: bytes, frame: bytes, events: list[Event]) -> None:
        st = self.stats
        try:
            hello = _parse_hello(body)
        except (_Malformed, struct.error, UnicodeDecodeError, IndexError):
            st.format_errors += 1
            self._track(seq, t_us, events)
            events.append(DecodeError("format", frame[:RAW_LIMIT]))
            return
        st.frames_ok += 1
        # A different boot id means the device rebooted, even if its clock
        # happens to read later than before.
        new_boot = self.hello is not None and hello.boot_id != self.hello.boot_id
        self._track(seq, t_us, events, reset=new_boot)
        self.hello = hello
        self._unpackers.clear()
        events.append(hello)

    def _samples(self, body: bytes) -> tuple[tuple[float, ...], ...]:
        if len(body) < SAMPLES_HEADER.size:
            raise _Malformed
        n_ch, fmt, n = SAMPLES_HEADER.unpack_from(body)
        key = (n_ch, fmt, n)
        cached = self._unpackers.get(key)
        if cached is None:
            cached = self._make_unpacker(n_ch, fmt, n)
            self._unpackers[key] = cached
        unpacker, scales = cached
        if len(body) != SAMPLES_HEADER.size + unpacker.size:
            raise _Malformed
        flat = unpacker.unpack_from(body, SAMPLES_HEADER.size)
        if scales is not None:
            flat = tuple(map(operator.mul, flat, scales))
        # zip over n_ch copies of one iterator regroups the flat run into rows.
        return tuple(zip(*[iter(flat)] * n_ch))

    def _make_unpacker(self, n_ch: int, fmt: int, n: int) -> tuple[struct.Struct, tuple[float, ...] | None]:
        assert self.hello is not None
        if n_ch != len(self.hello.channels) or fmt not in FORMAT_CODES or n == 0:
            raise _Malformed
        code, _ = FORMAT_CODES[fmt]
        scales = self.hello.scales * n if fmt == 1 else None
        if len(self._unpackers) > 64:  # bounded cache: one entry per frame shape
            self._unpackers.clear()
        return struct.Struct(f"<{n_ch * n}{code}"), scales


def _parse_hello(body: bytes) -> Hello:
    boot_id, rate, fmt, n_ch = HELLO_HEADER.unpack_from(body)
    pos = HELLO_HEADER.size

    def str8() -> str:
        nonlocal pos
        n = body[pos]
        if pos + 1 + n > len(body):
            raise _Malformed
        text = body[pos + 1 : pos + 1 + n].decode("utf-8")
        pos += 1 + n
        return text

    device_id = str8()
    firmware = str8()
    names, units, scales = [], [], []
    for _ in range(n_ch):
        names.append(str8())
        units.append(str8())
        scales.append(_F32.unpack_from(body, pos)[0])
        pos += 4
    if pos != len(body) or n_ch == 0 or not rate > 0 or fmt not in FORMAT_CODES:
        raise _Malformed
    return Hello(device_id, firmware, tuple(names), tuple(units), rate, tuple(scales), boot_id, fmt)
