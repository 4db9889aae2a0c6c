"""Events the decoders emit, and their counters.

Events are small frozen dataclasses (as in h11's ``_events.py``): the decoder
returns them, the caller dispatches on ``isinstance``. Nothing here raises on
wire data; a bad frame is a :class:`DecodeError` *value*.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

__all__ = [
    "Event",
    "Hello",
    "Samples",
    "Heartbeat",
    "Gap",
    "DecodeError",
    "DeviceMessage",
    "DecoderStats",
    "RAW_LIMIT",
]

#: DecodeError.raw keeps at most this many bytes, so a flood of garbage cannot
#: turn into a flood of memory.
RAW_LIMIT = 64


@dataclass(frozen=True)
class Hello:
    """The device introduces itself: sent at boot and periodically.

    Attributes
    ----------
    device_id, firmware : str
        Free text chosen by the firmware (UTF-8 on the wire, invalid bytes replaced).
    channels, units : tuple of str
        One name and one unit per channel, in the order samples carry them.
    sample_rate_hz : float
        Nominal rate; sample ``i`` of a frame lies ``i / rate`` after its timestamp.
    scales : tuple of float
        Engineering units per int16 count (1.0 for float formats).
    boot_id : int
        Changes on every boot; a new value means the device was reset.
    sample_format : int
        The :class:`~firmware_bridge.protocol.SampleFormat` the device will send.
    """

    device_id: str
    firmware: str
    channels: tuple[str, ...]
    units: tuple[str, ...]
    sample_rate_hz: float
    scales: tuple[float, ...]
    boot_id: int = 0
    sample_format: int = 1


@dataclass(frozen=True)
class Samples:
    """A block of consecutive samples from one frame (or several text lines).

    Attributes
    ----------
    seq : int
        Frame sequence number (binary) or index of the first sample (text).
    device_time_us : int
        Device time of the first sample in microseconds; -1 in text mode when no
        rate is configured (times are then unknown, never guessed).
    channels : tuple of str or None
        Channel names, in value order; None in text mode before configuration.
    values : tuple of tuple of float
        ``values[i][c]`` is sample ``i`` of channel ``c``, in engineering units.
    """

    seq: int
    device_time_us: int
    channels: tuple[str, ...] | None
    values: tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class Heartbeat:
    """The device is alive (sent when it has nothing else to say)."""

    seq: int
    device_time_us: int


@dataclass(frozen=True)
class Gap:
    """The stream is discontinuous: emitted before the next :class:`Samples`.

    ``reason`` is ``"sequence"`` (frames missing from an otherwise clean line),
    ``"resync"`` (frames missing where garbage or a malformed frame was
    skipped) or ``"reset"`` (the device rebooted; ``lost_frames`` then counts
    the frames of the new boot that never arrived).
    """

    lost_frames: int
    reason: str


@dataclass(frozen=True)
class DecodeError:
    """Something on the wire could not be used; the decoder carried on.

    ``reason`` is one of ``"crc"``, ``"cobs"``, ``"short"``, ``"version"``,
    ``"type"``, ``"oversize"``, ``"format"`` (a CRC-valid frame whose content is
    inconsistent) or ``"text"``. ``raw`` holds at most 64 bytes of the culprit.
    """

    reason: str
    raw: bytes


@dataclass(frozen=True)
class DeviceMessage:
    """A text line the device sent about itself, e.g. ``ERR sensor not found``."""

    text: str
    is_error: bool


Event = Hello | Samples | Heartbeat | Gap | DecodeError | DeviceMessage


@dataclass
class DecoderStats:
    """Running counters of a decoder (mutable; read them at any time).

    Attributes
    ----------
    frames_ok : int
        CRC-valid frames of a known version and type.
    crc_errors, cobs_errors, short_frames, oversize : int
        Chunks between delimiters that were discarded for that reason.
    resyncs : int
        Times the decoder threw bytes away and restarted at the next delimiter
        (one per discarded chunk) -- or, in text mode, per discarded line.
    lost_frames : int
        Frames whose samples never reached the caller: sequence gaps plus
        CRC-valid frames dropped as malformed. Equals the sum of ``Gap.lost_frames``.
    resets : int
        Device reboots detected (new boot id, or device time going backwards).
    unknown_version, unknown_type, format_errors : int
        CRC-valid frames skipped because of their version, type or content.
    awaiting_hello : int
        Sample frames skipped because no HELLO has described the channels yet.
    text_errors : int
        Text lines that were not a sample, a header or a device message.
    device_errors : int
        Text lines starting with ``ERR``.
    samples : int
        Sample rows delivered (one row holds every channel at one instant).
    """

    frames_ok: int = 0
    crc_errors: int = 0
    cobs_errors: int = 0
    short_frames: int = 0
    oversize: int = 0
    resyncs: int = 0
    lost_frames: int = 0
    resets: int = 0
    unknown_version: int = 0
    unknown_type: int = 0
    format_errors: int = 0
    awaiting_hello: int = 0
    text_errors: int = 0
    device_errors: int = 0
    samples: int = 0
    bytes_in: int = field(default=0)

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict (for logs and JSON)."""
        return asdict(self)
