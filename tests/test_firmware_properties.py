"""Property tests: random corruption, truncation, insertion and deletion.

The decoder must never raise, never emit samples from a damaged frame,
resynchronise at the next intact frame, and count exactly the frames lost.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_bridge.protocol import (
    DecodeError,
    FrameDecoder,
    Gap,
    Samples,
    StreamDecoder,
    TextDecoder,
    encode_heartbeat,
    encode_hello,
    encode_samples,
)

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def stream(n_frames: int) -> tuple[list[bytes], dict[int, tuple]]:
    """A HELLO then sample/heartbeat frames; returns the frames and seq -> rows."""
    frames = [encode_hello(0, 0, device_id="p", firmware="1", channels=("a", "b"), units=("g", "g"),
                           sample_rate_hz=100.0, scales=(1.0, 1.0), boot_id=7)]
    rows = {}
    for seq in range(1, n_frames + 1):
        if seq % 5 == 0:
            frames.append(encode_heartbeat(seq, seq * 1000))
        else:
            r = tuple((seq, i) for i in range(1 + seq % 3))
            rows[seq] = tuple(tuple(float(v) for v in row) for row in r)
            frames.append(encode_samples(seq, seq * 1000, r))
    return frames, rows


damage = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=40),  # which frame (HELLO stays intact)
        st.sampled_from(["flip", "truncate", "insert", "delete"]),
        st.integers(min_value=0, max_value=10_000),  # position seed
        st.binary(min_size=1, max_size=8),  # inserted bytes / flip mask source
    ),
    max_size=8,
    unique_by=lambda d: d[0],
)


def apply(frame: bytes, kind: str, pos: int, junk: bytes) -> bytes:
    body = bytearray(frame)
    i = 1 + pos % (len(body) - 2)  # inside the frame, between its delimiters
    if kind == "flip":
        body[i] ^= junk[0] or 1
    elif kind == "truncate":
        del body[i:-1]  # keep the trailing delimiter: the tail never arrived
    elif kind == "insert":
        body[i:i] = junk
    else:
        del body[i]
    return bytes(body)


@SETTINGS
@given(damage=damage, split=st.integers(min_value=1, max_value=64))
def test_damaged_frames_are_lost_and_counted_exactly(damage: list, split: int) -> None:
    frames, rows = stream(40)
    damaged = set()
    wire = list(frames)
    for idx, kind, pos, junk in damage:
        new = apply(frames[idx], kind, pos, junk)
        if new != frames[idx]:
            wire[idx] = new
            damaged.add(idx)
    data = b"".join(wire)
    dec = FrameDecoder()
    events = []
    for k in range(0, len(data), split):
        events += dec.feed(data[k:k + split])
    delivered = [e for e in events if isinstance(e, Samples)]
    # Never a sample from a damaged frame, never a value on the wrong seq.
    for ev in delivered:
        assert ev.seq not in damaged
        assert ev.values == rows[ev.seq]
    # Every intact sample frame arrives.
    assert {e.seq for e in delivered} == {s for s in rows if s not in damaged}
    # Lost frames are those damaged before the last intact frame (a damaged
    # tail cannot be known until the next frame arrives).
    last_intact = max(i for i in range(len(frames)) if i not in damaged)
    assert dec.stats.lost_frames == sum(1 for i in damaged if i < last_intact)
    assert sum(e.lost_frames for e in events if isinstance(e, Gap)) == dec.stats.lost_frames
    # Garbage is seen unless the damage removed a frame entirely.
    assert (dec.stats.resyncs > 0) == any(wire[i].strip(b"\x00") for i in damaged)
    assert dec.stats.resets == 0


@SETTINGS
@given(data=st.binary(max_size=3000), split=st.integers(min_value=1, max_value=512))
def test_garbage_never_raises_and_stays_bounded(data: bytes, split: int) -> None:
    for dec in (FrameDecoder(max_frame_len=256), StreamDecoder(), TextDecoder(channels=("a",), rate_hz=1.0)):
        for k in range(0, len(data), split):
            for ev in dec.feed(data[k:k + split]):
                if isinstance(ev, DecodeError):
                    assert len(ev.raw) <= 64
        assert dec.buffered <= 4 * 4096


@SETTINGS
@given(garbage=st.binary(max_size=600))
def test_resynchronises_at_next_intact_frame(garbage: bytes) -> None:
    frames, rows = stream(6)
    dec = FrameDecoder()
    events = dec.feed(frames[0] + frames[1] + garbage + b"".join(frames[2:]))
    got = [e.seq for e in events if isinstance(e, Samples)]
    assert got == sorted(rows)
    assert dec.stats.lost_frames == 0


@SETTINGS
@given(lines=st.lists(st.tuples(st.integers(-1000, 1000), st.integers(-1000, 1000)), min_size=1, max_size=30),
       bad=st.sets(st.integers(0, 29), max_size=5))
def test_text_mode_keeps_later_samples_at_the_right_time(lines: list, bad: set) -> None:
    out = []
    for i, (a, b) in enumerate(lines):
        out.append(b"!!noise!!" if i in bad else f"{a},{b}".encode())
    dec = TextDecoder(channels=("a", "b"), rate_hz=10.0)
    events = dec.feed(b"\n".join(out) + b"\n")
    for ev in events:
        if isinstance(ev, Samples):
            for j, row in enumerate(ev.values):
                idx = ev.seq + j
                assert row == tuple(float(v) for v in lines[idx])
                assert ev.device_time_us == round(ev.seq * 1e5)
    assert dec.stats.text_errors == len([i for i in bad if i < len(lines)])
