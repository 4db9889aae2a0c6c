"""The simulator on real pseudo-terminals, read through pyserial by SerialReader."""

from __future__ import annotations

import io
import json
import os
import queue
import threading

import pytest

from firmware_bridge.protocol import Hello, Samples, StreamDecoder
from firmware_bridge.serial_reader import SerialReader
from firmware_bridge.simulator import LineFaults, Simulator
from firmware_bridge.sources import load_source

TIMEOUT = 30.0


def decode_until_done(sim: Simulator, dec: StreamDecoder) -> list:
    """Read the simulator's pty until it has finished and the line is drained."""
    chunks: queue.Queue[bytes] = queue.Queue()
    reader = SerialReader(sim.port_path, chunks.put, read_timeout=0.05).start()
    try:
        assert reader.wait_connected(TIMEOUT)
        sim.start()
        assert sim.done.wait(TIMEOUT), "simulator did not finish"
        events = []
        while True:
            try:
                chunk = chunks.get(timeout=0.5)  # the line is quiet once drained
            except queue.Empty:
                break
            events += dec.feed(chunk)
        return events
    finally:
        reader.stop()


def test_clean_binary_stream_arrives_bit_for_bit(tmp_path) -> None:
    csv = tmp_path / "d.csv"
    csv.write_text("time,a,b,label\n" + "".join(f"{i / 100},{i * 0.1!r},{-i / 3!r},0\n" for i in range(300)))
    src = load_source(str(csv))
    with Simulator(src, realtime=False) as sim:
        dec = StreamDecoder()
        events = decode_until_done(sim, dec)
    hello = next(e for e in events if isinstance(e, Hello))
    assert hello.channels == ("a", "b") and hello.sample_rate_hz == 100.0 and hello.device_id == "sim-1"
    rows = [row for e in events if isinstance(e, Samples) for row in e.values]
    import struct

    f32 = lambda v: struct.unpack("<f", struct.pack("<f", v))[0]  # noqa: E731
    assert rows == [(f32(i * 0.1), f32(-i / 3)) for i in range(300)]
    assert dec.stats.lost_frames == 0 and dec.stats.resyncs == 0


def test_decoder_counters_match_injected_faults() -> None:
    src = load_source("synthetic", seconds=4.0, rate_hz=1000.0, seed=3)
    log = io.StringIO()
    faults = LineFaults(bit_error_rate=2e-5, drop_rate=0.03, disconnect_every=1.5, disconnect_for=0.1)
    with Simulator(src, realtime=False, faults=faults, fault_log=log, seed=5) as sim:
        dec = StreamDecoder(mode="binary")
        decode_until_done(sim, dec)
    truth = sim.truth
    records = [json.loads(line) for line in log.getvalue().splitlines()]
    assert truth["frames_dropped"] > 0 and truth["frames_corrupted"] > 0 and truth["resets"] == 2
    assert sum(r["event"] == "drop" for r in records) == truth["frames_dropped"]
    assert dec.stats.lost_frames == truth["lost_detectable"]
    assert dec.stats.resets == truth["resets_detectable"]
    # Intact frames after a reset whose HELLO was lost wait for the next HELLO.
    assert dec.stats.samples <= truth["samples_sent"]
    if dec.stats.awaiting_hello == 0:
        assert dec.stats.samples == truth["samples_sent"]
    assert dec.stats.resyncs >= truth["frames_corrupted"] // 2


def test_text_mode_auto_detected_with_configured_rate(tmp_path) -> None:
    src = load_source("synthetic", seconds=0.5, rate_hz=200.0)
    with Simulator(src, mode="text", realtime=False) as sim:
        dec = StreamDecoder(text_rate_hz=200.0)
        events = decode_until_done(sim, dec)
    assert dec.detected == "text"
    hello = next(e for e in events if isinstance(e, Hello))
    assert hello.channels == ("vib_x", "vib_y", "vib_z", "current")
    rows = [row for e in events if isinstance(e, Samples) for row in e.values]
    assert rows == list(src.rows)  # repr() floats round-trip exactly


def test_reader_reconnects_when_port_disappears_and_returns(tmp_path) -> None:
    link = str(tmp_path / "ttySIM")
    connected = queue.Queue()
    lost = queue.Queue()
    got = threading.Event()
    reader = SerialReader(link, lambda data: got.set(), backoff=(0.05, 0.2), read_timeout=0.05,
                          on_connect=connected.put, on_disconnect=lambda url, msg: lost.put(msg))
    reader.start()
    try:
        msg = lost.get(timeout=TIMEOUT)  # the port does not exist yet: reported, retried
        assert link in msg and "retrying" in msg
        src = load_source("synthetic", seconds=600.0, rate_hz=200.0)
        faults = LineFaults(disconnect_every=0.5, disconnect_for=0.2)
        with Simulator(src, realtime=True, link=link, faults=faults) as sim:
            sim.start()
            assert connected.get(timeout=TIMEOUT) == link
            assert got.wait(TIMEOUT)
            # The pty goes away at the first disconnect and a new one appears.
            while "went away" not in lost.get(timeout=TIMEOUT):
                pass
            assert connected.get(timeout=TIMEOUT) == link
        assert reader.connects >= 2 and reader.disconnects >= 1
    finally:
        reader.stop()


def test_missing_port_is_a_clear_error(tmp_path) -> None:
    from firmware_bridge.errors import PortError

    with pytest.raises(PortError, match="does-not-exist"):
        Simulator(load_source("synthetic", seconds=0.1), port=str(tmp_path / "does-not-exist"))
    assert not os.path.exists(tmp_path / "does-not-exist")
