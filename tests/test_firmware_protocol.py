"""Binary protocol: COBS, encoder errors, decoder events, counters and limits."""

from __future__ import annotations

import pytest

from firmware_bridge import _cobs
from firmware_bridge.errors import FrameEncodeError
from firmware_bridge.protocol import (
    DecodeError,
    FrameDecoder,
    FrameType,
    Gap,
    Heartbeat,
    Hello,
    SampleFormat,
    Samples,
    StreamDecoder,
    crc32,
    encode_frame,
    encode_heartbeat,
    encode_hello,
    encode_samples,
    quantize,
)

CH = ("x", "y", "z")


def hello(seq: int = 0, t: int = 0, boot: int = 1, channels: tuple[str, ...] = CH) -> bytes:
    return encode_hello(seq, t, device_id="dev", firmware="1.0", channels=channels, units=("g",) * len(channels),
                        sample_rate_hz=1000.0, scales=(0.5,) * len(channels), boot_id=boot)


def samples(seq: int, t: int, n: int = 4, fmt: int = SampleFormat.INT16) -> bytes:
    return encode_samples(seq, t, [(seq, i, -i) for i in range(n)], sample_format=fmt)


def feed_three_ways(data: bytes) -> list[list]:
    """Whole, one byte at a time, and in uneven chunks (h11's ``tr``)."""
    results = []
    for chunks in ([data], [data[i:i + 1] for i in range(len(data))], [data[i:i + 7] for i in range(0, len(data), 7)]):
        dec = FrameDecoder()
        events = []
        for c in chunks:
            events += dec.feed(c)
        results.append(events)
    return results


COBS_VECTORS = [
    (b"", b"\x01"),
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (b"\x01" * 254, b"\xff" + b"\x01" * 254),
    (b"\x01" * 254 + b"\x00", b"\xff" + b"\x01" * 254 + b"\x01\x01"),
    (b"\x01" * 255, b"\xff" + b"\x01" * 254 + b"\x02\x01"),
]


@pytest.mark.parametrize(("raw", "enc"), COBS_VECTORS, ids=[f"len{len(r)}-{i}" for i, (r, _) in enumerate(COBS_VECTORS)])
def test_cobs_known_vectors_both_ways(raw: bytes, enc: bytes) -> None:
    assert _cobs.encode(raw) == enc
    assert _cobs.decode(enc) == raw


@pytest.mark.parametrize("length", list(range(250, 260)) + list(range(505, 512)))
def test_cobs_round_trip_around_block_boundary(length: int) -> None:
    raw = bytes((i % 255) + 1 if i % 97 else 0 for i in range(length))
    enc = _cobs.encode(raw)
    assert 0 not in enc
    assert len(enc) <= _cobs.max_encoded_len(length)
    assert _cobs.decode(enc) == raw


@pytest.mark.parametrize("bad", [b"\x05\x01", b"\x02\x00", b"\x03\x01"], ids=["past-end", "zero", "short"])
def test_cobs_rejects_invalid(bad: bytes) -> None:
    with pytest.raises(_cobs.CobsError):
        _cobs.decode(bad)


def test_crc32_check_value() -> None:
    assert crc32(b"123456789") == 0xCBF43926


def test_stream_in_three_ways_gives_same_events() -> None:
    data = hello() + samples(1, 100) + encode_heartbeat(2, 200) + samples(3, 300)
    whole, bytewise, chunked = feed_three_ways(data)
    assert whole == bytewise == chunked
    assert [type(e) for e in whole] == [Hello, Samples, Heartbeat, Samples]
    assert whole[1].values == ((0.5, 0.0, -0.0), (0.5, 0.5, -0.5), (0.5, 1.0, -1.0), (0.5, 1.5, -1.5))
    assert whole[1].channels == CH


def test_trailing_partial_frame_stays_buffered() -> None:
    dec = FrameDecoder()
    frame = samples(1, 10)
    assert [type(e) for e in dec.feed(hello() + frame[:-3])] == [Hello]
    assert [type(e) for e in dec.feed(frame[-3:])] == [Samples]


def test_float_formats_carry_values_bit_for_bit() -> None:
    vals = [(0.1, 1e-300, -2.5)]
    dec = FrameDecoder()
    ev = dec.feed(hello() + encode_samples(1, 0, vals, sample_format=SampleFormat.FLOAT64))[-1]
    assert ev.values == ((0.1, 1e-300, -2.5),)
    ev = dec.feed(encode_samples(2, 0, [(0.5, 0.25, 3.0)], sample_format=SampleFormat.FLOAT32))[-1]
    assert ev.values == ((0.5, 0.25, 3.0),)


def test_sequence_gap_is_reported_before_samples() -> None:
    dec = FrameDecoder()
    events = dec.feed(hello() + samples(1, 10) + samples(5, 50))
    assert events[2:] == [Gap(3, "sequence"), events[3]]
    assert isinstance(events[3], Samples)
    assert dec.stats.lost_frames == 3


def test_crc_error_then_resync_reports_lost_frame() -> None:
    bad = bytearray(samples(2, 20))
    bad[5] ^= 0x40
    dec = FrameDecoder()
    events = dec.feed(hello() + samples(1, 10) + bytes(bad) + samples(3, 30))
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["Hello", "Samples", "DecodeError", "Gap", "Samples"]
    assert events[2].reason in ("crc", "cobs")
    assert events[3] == Gap(1, "resync")
    assert dec.stats.resyncs == 1 and dec.stats.lost_frames == 1


def test_reset_by_new_boot_id() -> None:
    dec = FrameDecoder()
    events = dec.feed(hello(boot=1) + samples(1, 10) + hello(0, 5, boot=2) + samples(1, 10))
    assert Gap(0, "reset") in events
    assert dec.stats.resets == 1 and dec.stats.lost_frames == 0


def test_reset_by_time_going_back_forgets_channels_until_next_hello() -> None:
    dec = FrameDecoder()
    events = dec.feed(hello() + samples(1, 1000) + samples(2, 5) + hello(3, 6) + samples(4, 7))
    assert Gap(2, "reset") in events
    assert dec.stats.awaiting_hello == 1  # frame 2 could be a different device: not mapped
    assert sum(isinstance(e, Samples) for e in events) == 2


def test_samples_before_any_hello_are_held_back() -> None:
    dec = FrameDecoder()
    assert dec.feed(samples(1, 0)) == []
    assert dec.stats.awaiting_hello == 1


def test_unknown_version_and_type_are_counted_and_skipped() -> None:
    dec = FrameDecoder()
    events = dec.feed(hello() + encode_frame(9, 1, 0, b"?") + encode_frame(FrameType.HEARTBEAT, 2, 1, version=2)
                      + samples(2, 2))
    reasons = [e.reason for e in events if isinstance(e, DecodeError)]
    assert reasons == ["type", "version"]
    assert dec.stats.unknown_type == 1 and dec.stats.unknown_version == 1
    assert dec.stats.lost_frames == 0  # the unknown type kept the sequence


def test_channel_count_mismatch_is_format_error_not_misplaced() -> None:
    dec = FrameDecoder()
    events = dec.feed(hello() + encode_samples(1, 0, [(1, 2)]) + samples(2, 1))
    assert [type(e).__name__ for e in events] == ["Hello", "Gap", "DecodeError", "Samples"]
    assert events[2].reason == "format" and dec.stats.format_errors == 1


def test_oversize_run_is_dropped_and_buffer_stays_bounded() -> None:
    dec = FrameDecoder(max_frame_len=64)
    events = dec.feed(b"\x01" * 1000)
    assert [e.reason for e in events] == ["oversize"]
    assert dec.buffered <= 100
    events = dec.feed(b"\x01" * 10 + hello(channels=("a",)))
    assert isinstance(events[-1], Hello)
    assert all(len(e.raw) <= 64 for e in events if isinstance(e, DecodeError))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: encode_frame(1, 70000, 0), "seq"),
        (lambda: encode_samples(0, 0, []), "at least one"),
        (lambda: encode_samples(0, 0, [(1, 2), (3,)]), "same"),
        (lambda: encode_samples(0, 0, [(40000,)]), "fit"),
        (lambda: encode_samples(0, 0, [(1,)] * 3000), "max_frame_len"),
        (lambda: encode_hello(0, 0, device_id="d", firmware="f", channels=("a",), units=(), sample_rate_hz=1.0), "unit"),
        (lambda: encode_hello(0, 0, device_id="d", firmware="f", channels=("a",), units=("u",), sample_rate_hz=0.0), "rate"),
    ],
    ids=["seq", "empty", "ragged", "int16-range", "too-long", "units", "rate"],
)
def test_encoder_raises_for_local_mistakes(call, match: str) -> None:
    with pytest.raises(FrameEncodeError, match=match):
        call()


def test_quantize_rounds_and_clips() -> None:
    assert quantize((0.26, -0.26, 1e9, -1e9), (0.5, 0.5, 1.0, 1.0)) == (1, -1, 32767, -32768)


def test_stream_decoder_detects_binary_after_garbage() -> None:
    dec = StreamDecoder()
    events = dec.feed(b"\xff\x13garbage" + hello() + samples(1, 0))
    assert dec.detected == "binary"
    assert [type(e) for e in events if not isinstance(e, DecodeError)] == [Hello, Samples]


def test_package_exports_protocol_and_stays_stdlib_only() -> None:
    import subprocess
    import sys

    import firmware_bridge
    from firmware_bridge import protocol

    assert sorted(firmware_bridge.__all__) == sorted(protocol.__all__)
    assert all(hasattr(firmware_bridge, name) for name in firmware_bridge.__all__)
    code = ("import sys, firmware_bridge, firmware_bridge.simulator, firmware_bridge.serial_reader, "
            "firmware_bridge.capture, firmware_bridge.synthetic; "
            "print(sorted(m for m in ('serial', 'click', 'numpy', 'edge_runtime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
