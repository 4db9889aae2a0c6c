"""The edgewatch serial protocol: wire format, Python encoder and decoders.

This module is the public face of the protocol; the pieces live in private
modules (``_wire``, ``_decoder``, ``_text``, ``_stream``, ``_events``). Read
``PROTOCOL.md`` next to this file for the byte-level specification.

Examples
--------
>>> from firmware_bridge.protocol import StreamDecoder, encode_hello, encode_samples
>>> wire = encode_hello(0, 0, device_id="d", firmware="1", channels=("x",),
...                     units=("g",), sample_rate_hz=100.0, scales=(0.5,))
>>> wire += encode_samples(1, 0, [(2,), (4,)])
>>> [type(e).__name__ for e in StreamDecoder().feed(wire)]
['Hello', 'Samples']
"""

from __future__ import annotations

from firmware_bridge._decoder import FrameDecoder
from firmware_bridge._events import (
    DecodeError,
    DecoderStats,
    DeviceMessage,
    Event,
    Gap,
    Heartbeat,
    Hello,
    Samples,
)
from firmware_bridge._stream import StreamDecoder
from firmware_bridge._text import TextDecoder
from firmware_bridge._wire import (
    DEFAULT_MAX_FRAME_LEN,
    PROTOCOL_VERSION,
    FrameType,
    SampleFormat,
    crc32,
    encode_frame,
    encode_heartbeat,
    encode_hello,
    encode_samples,
    quantize,
)

__all__ = [
    "PROTOCOL_VERSION",
    "DEFAULT_MAX_FRAME_LEN",
    "FrameType",
    "SampleFormat",
    "crc32",
    "encode_frame",
    "encode_hello",
    "encode_samples",
    "encode_heartbeat",
    "quantize",
    "FrameDecoder",
    "TextDecoder",
    "StreamDecoder",
    "Event",
    "Hello",
    "Samples",
    "Heartbeat",
    "Gap",
    "DecodeError",
    "DeviceMessage",
    "DecoderStats",
]
