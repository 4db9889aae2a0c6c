"""A decoder that detects binary or text mode from the first bytes."""

from __future__ import annotations

from firmware_bridge._decoder import FrameDecoder
from firmware_bridge._events import DecoderStats, Event
from firmware_bridge._text import TextDecoder
from firmware_bridge._wire import DEFAULT_MAX_FRAME_LEN

__all__ = ["StreamDecoder", "MODES"]

MODES = ("auto", "binary", "text")
#: Text mode is chosen after this many consistent sample lines with no 0x00 byte.
_TEXT_LINES = 3


class StreamDecoder:
    """Decode a serial stream in binary or text mode, detecting which if asked.

    Parameters
    ----------
    mode : {"auto", "binary", "text"}
        ``"auto"`` buffers the first bytes (at most ``2 * max_frame_len``) until
        either a CRC-valid binary frame or three consistent numeric text lines
        with no ``0x00`` byte appear, then replays them into the chosen decoder.
        Binary frames always contain ``0x00`` delimiters and text never does, so
        the two cannot be confused for long. The mode then stays fixed; make a
        new decoder to detect again.
    text_channels, text_rate_hz
        Configuration for text mode (see :class:`TextDecoder`).
    max_frame_len : int
        Passed to :class:`FrameDecoder`.

    Attributes
    ----------
    stats : DecoderStats
        Counters of whichever decoder is in use (zero while detecting).
    detected : str or None
        ``"binary"`` or ``"text"`` once known.

    Examples
    --------
    >>> dec = StreamDecoder(text_channels=("a", "b"), text_rate_hz=100.0)
    >>> _ = dec.feed(b"1,2\\n3,4\\n5,6\\n7,8\\n")
    >>> dec.detected, dec.stats.samples
    ('text', 4)
    """

    def __init__(
        self,
        *,
        mode: str = "auto",
        text_channels: tuple[str, ...] | None = None,
        text_rate_hz: float | None = None,
        max_frame_len: int = DEFAULT_MAX_FRAME_LEN,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES!r} (got {mode!r})")
        self.mode = mode
        self.stats = DecoderStats()
        self._text_args = {"channels": text_channels, "rate_hz": text_rate_hz}
        self._max_frame_len = max_frame_len
        # Validate the text configuration now, not when text is first seen.
        TextDecoder(**self._text_args)
        self._inner: FrameDecoder | TextDecoder | None = None
        self.detected: str | None = None
        self._probe = bytearray()
        self._probe_binary = FrameDecoder(max_frame_len=max_frame_len)
        if mode != "auto":
            self._choose(mode)

    def _choose(self, mode: str) -> None:
        if mode == "binary":
            inner: FrameDecoder | TextDecoder = FrameDecoder(max_frame_len=self._max_frame_len)
            inner.stats = self.stats
        else:
            inner = TextDecoder(**self._text_args, stats=self.stats)
        self._inner = inner
        self.detected = mode

    @property
    def buffered(self) -> int:
        """Bytes held by the decoder (while detecting: the probe, at most ``4 * max_frame_len``)."""
        if self._inner is not None:
            return self._inner.buffered
        return len(self._probe) + self._probe_binary.buffered

    def feed(self, data: bytes) -> list[Event]:
        """Consume ``data`` and return decoded events (none while detecting)."""
        if self._inner is not None:
            return self._inner.feed(data)
        self._probe += data
        self._probe_binary.feed(data)
        mode = self._guess()
        if mode is None:
            limit = 2 * self._max_frame_len
            if len(self._probe) > limit:
                # Keep the newest bytes: a frame or line may be starting there.
                del self._probe[: len(self._probe) - limit]
            return []
        self._choose(mode)
        probe = bytes(self._probe)
        self._probe.clear()
        return self.feed(probe)

    def _guess(self) -> str | None:
        if self._probe_binary.stats.frames_ok:
            return "binary"
        if 0 in self._probe:
            return None
        lines = bytes(self._probe).split(b"\n")[:-1]
        if len(lines) < _TEXT_LINES:
            return None
        probe = TextDecoder(**self._text_args)
        probe.feed(b"\n".join(lines) + b"\n")
        good = probe.stats.samples + probe.stats.device_errors
        # The first line may be the tail of one sent before we started
        # listening, so one error is tolerated; later noise needs a majority.
        if probe.stats.samples >= _TEXT_LINES and probe.stats.text_errors <= 1:
            return "text"
        if len(lines) >= 16 and good > probe.stats.text_errors:
            return "text"
        return None
