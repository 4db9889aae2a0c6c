"""The binary wire format: constants, layouts and the Python encoder.

See ``PROTOCOL.md`` for the normative description. Everything here is a pure
function of its arguments; the C encoder produces the same bytes.
"""

from __future__ import annotations

import binascii
import math
import struct
from collections.abc import Sequence
from enum import IntEnum

from firmware_bridge import _cobs
from firmware_bridge.errors import FrameEncodeError

__all__ = [
    "PROTOCOL_VERSION",
    "FrameType",
    "SampleFormat",
    "HEADER",
    "HEADER_LEN",
    "CRC_LEN",
    "SAMPLES_HEADER",
    "DEFAULT_MAX_FRAME_LEN",
    "crc32",
    "encode_frame",
    "encode_hello",
    "encode_samples",
    "encode_heartbeat",
    "quantize",
]

PROTOCOL_VERSION = 1
DEFAULT_MAX_FRAME_LEN = 4096

#: version u8, type u8, seq u16, device time u64 (microseconds since boot)
HEADER = struct.Struct("<BBHQ")
HEADER_LEN = HEADER.size  # 12
CRC_LEN = 4
#: channel count u8, sample format u8, sample count u16
SAMPLES_HEADER = struct.Struct("<BBH")
#: boot id u32, sample rate f32, sample format u8, channel count u8
HELLO_HEADER = struct.Struct("<IfBB")


class FrameType(IntEnum):
    """Frame types of protocol version 1."""

    HELLO = 1
    SAMPLES = 2
    HEARTBEAT = 3


class SampleFormat(IntEnum):
    """How sample values are stored in a SAMPLES frame."""

    INT16 = 1  #: signed counts, multiplied by the HELLO scale of their channel
    FLOAT32 = 2  #: IEEE-754 binary32, engineering units
    FLOAT64 = 3  #: IEEE-754 binary64, engineering units (exact host replays)


#: struct code and byte size per sample format
FORMAT_CODES: dict[int, tuple[str, int]] = {
    SampleFormat.INT16: ("h", 2),
    SampleFormat.FLOAT32: ("f", 4),
    SampleFormat.FLOAT64: ("d", 8),
}


def crc32(data: bytes) -> int:
    """CRC-32 (IEEE 802.3, as zlib): check value 0xCBF43926 for b"123456789".

    ``binascii`` computes it in C, which keeps the decoder fast without any
    dependency.
    """
    return binascii.crc32(data) & 0xFFFFFFFF


def encode_frame(
    frame_type: int,
    seq: int,
    device_time_us: int,
    payload: bytes = b"",
    *,
    version: int = PROTOCOL_VERSION,
    max_frame_len: int = DEFAULT_MAX_FRAME_LEN,
) -> bytes:
    """Build one frame: ``0x00``, COBS(header + payload + CRC-32), ``0x00``.

    Each frame carries both delimiters so that line noise before it (a partial
    frame when the gateway starts listening, idle-line glitches at power-up)
    cannot glue itself onto the frame; the empty chunk between two frames costs
    one byte and is skipped by the decoder.

    Raises
    ------
    FrameEncodeError
        For local mistakes: a field out of range or a frame over ``max_frame_len``.
    """
    if not 0 <= version <= 0xFF or not 0 <= frame_type <= 0xFF:
        raise FrameEncodeError(f"version {version!r} and frame_type {frame_type!r} must fit in a byte")
    if not 0 <= seq <= 0xFFFF:
        raise FrameEncodeError(f"seq must be in 0..65535 (got {seq!r}); wrap it with seq & 0xFFFF")
    if not 0 <= device_time_us < 1 << 64:
        raise FrameEncodeError(f"device_time_us must be in 0..2**64-1 (got {device_time_us!r})")
    raw = HEADER.pack(version, frame_type, seq, device_time_us) + payload
    if len(raw) + CRC_LEN > max_frame_len:
        raise FrameEncodeError(
            f"frame of {len(raw) + CRC_LEN} bytes exceeds max_frame_len={max_frame_len}; "
            "send fewer samples per frame"
        )
    raw += struct.pack("<I", crc32(raw))
    return b"\x00" + _cobs.encode(raw) + b"\x00"


def _str8(text: str, what: str) -> bytes:
    data = text.encode("utf-8")
    if len(data) > 255:
        raise FrameEncodeError(f"{what} {text!r} is {len(data)} bytes in UTF-8; at most 255 allowed")
    return bytes([len(data)]) + data


def encode_hello(
    seq: int,
    device_time_us: int,
    *,
    device_id: str,
    firmware: str,
    channels: Sequence[str],
    units: Sequence[str],
    sample_rate_hz: float,
    scales: Sequence[float] | None = None,
    boot_id: int = 0,
    sample_format: int = SampleFormat.INT16,
) -> bytes:
    """Encode a HELLO frame describing the device and its channels."""
    n = len(channels)
    scales = tuple(scales) if scales is not None else (1.0,) * n
    if not 1 <= n <= 255 or len(units) != n or len(scales) != n:
        raise FrameEncodeError(
            f"need 1..255 channels with one unit and one scale each "
            f"(got {n} channels, {len(units)} units, {len(scales)} scales)"
        )
    if not (math.isfinite(sample_rate_hz) and sample_rate_hz > 0):
        raise FrameEncodeError(f"sample_rate_hz must be a positive number (got {sample_rate_hz!r})")
    if not 0 <= boot_id <= 0xFFFFFFFF:
        raise FrameEncodeError(f"boot_id must fit in 32 bits (got {boot_id!r})")
    if sample_format not in FORMAT_CODES:
        raise FrameEncodeError(f"sample_format must be one of {sorted(map(int, FORMAT_CODES))} (got {sample_format!r})")
    parts = [
        HELLO_HEADER.pack(boot_id, sample_rate_hz, sample_format, n),
        _str8(device_id, "device_id"),
        _str8(firmware, "firmware"),
    ]
    for name, unit, scale in zip(channels, units, scales):
        parts += [_str8(name, "channel name"), _str8(unit, "unit"), struct.pack("<f", scale)]
    return encode_frame(FrameType.HELLO, seq, device_time_us, b"".join(parts))


def encode_samples(
    seq: int,
    device_time_us: int,
    values: Sequence[Sequence[float]],
    *,
    sample_format: int = SampleFormat.INT16,
) -> bytes:
    """Encode a SAMPLES frame.

    Parameters
    ----------
    values : sequence of rows
        ``values[i][c]``: sample ``i`` of channel ``c``. For ``INT16`` these are
        raw counts (use :func:`quantize`); for the float formats, engineering units.
    """
    if not values:
        raise FrameEncodeError("a SAMPLES frame needs at least one sample")
    n_ch = len(values[0])
    if not 1 <= n_ch <= 255 or any(len(row) != n_ch for row in values):
        raise FrameEncodeError(f"every row must hold the same 1..255 channels (first row has {n_ch})")
    if len(values) > 0xFFFF:
        raise FrameEncodeError(f"{len(values)} samples exceed the 65535 a frame can count")
    try:
        code, _ = FORMAT_CODES[sample_format]
    except KeyError:
        raise FrameEncodeError(
            f"sample_format must be one of {sorted(map(int, FORMAT_CODES))} (got {sample_format!r})"
        ) from None
    flat = [v for row in values for v in row]
    try:
        data = struct.pack(f"<{len(flat)}{code}", *flat)
    except struct.error as err:
        raise FrameEncodeError(f"sample values do not fit sample_format {sample_format!r}: {err}") from err
    payload = SAMPLES_HEADER.pack(n_ch, sample_format, len(values)) + data
    return encode_frame(FrameType.SAMPLES, seq, device_time_us, payload)


def encode_heartbeat(seq: int, device_time_us: int) -> bytes:
    """Encode a HEARTBEAT frame (empty payload)."""
    return encode_frame(FrameType.HEARTBEAT, seq, device_time_us)


def quantize(row: Sequence[float], scales: Sequence[float]) -> tuple[int, ...]:
    """Engineering units to int16 counts, rounding half away from zero and clipping.

    Clipping (not wrapping) mirrors what a saturated ADC does.
    """
    out = []
    for v, s in zip(row, scales):
        c = v / s
        c = math.floor(c + 0.5) if c >= 0 else -math.floor(-c + 0.5)
        out.append(max(-32768, min(32767, int(c))))
    return tuple(out)
