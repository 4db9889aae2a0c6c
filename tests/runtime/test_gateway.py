"""Simulator on a pty -> runtime (in process) -> real Mosquitto: parity and a faulty line."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from edge_runtime.app import Runtime
from edge_runtime.bundle import Bundle
from edge_runtime.config import load_config
from edge_runtime.pipeline import ScoredWindow
from edge_runtime.scorer import BundleScorer
from firmware_bridge.simulator import LineFaults, Simulator
from firmware_bridge.sources import load_csv
from tests.mqtt_broker import MosquittoBroker
from tests.runtime.conftest import signal_rows, write_csv


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll a condition with a deadline (the runtime exposes counters, not events, for these)."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout} s")
        tick.wait(0.02)


@contextmanager
def running(flags: dict[str, object]) -> Iterator[tuple[Runtime, list[ScoredWindow]]]:
    runtime = Runtime(load_config(None, flags, env={}), install_signals=False)
    windows: list[ScoredWindow] = []
    runtime.pipeline.on_window = windows.append
    thread = threading.Thread(target=runtime.run, daemon=True)
    thread.start()
    try:
        yield runtime, windows
    finally:
        runtime.stop_event.set()
        thread.join(timeout=30)
        assert not thread.is_alive(), "runtime did not stop within 30 s"


def base_flags(bundle: Path, broker: MosquittoBroker, tmp_path: Path, port: str) -> dict[str, object]:
    return {"bundle": str(bundle), "serial.url": port, "mqtt.url": broker.url, "device_id": "sim-1",
            "state_dir": str(tmp_path / "state")}


def test_host_and_gateway_give_identical_window_scores(bundle_file: Path, broker: MosquittoBroker, tmp_path: Path) -> None:
    rows = signal_rows(1500, seed=3, anomalies=[(700, 800)])
    csv = write_csv(tmp_path / "data.csv", rows)
    scorer = BundleScorer(Bundle.load(bundle_file))
    host = scorer.score_rows(np.loadtxt(csv, delimiter=",", skiprows=1), stride=scorer.bundle.stride)
    with Simulator(load_csv(str(csv), rate_hz=100.0), realtime=False) as sim:
        with running(base_flags(bundle_file, broker, tmp_path, sim.port_path)) as (runtime, windows):
            sim.start()
            wait_until(lambda: len(windows) >= len(host.scores), 60, f"{len(host.scores)} windows scored")
    assert len(host.scores) > 100
    assert [w.score for w in windows] == host.scores.tolist()


def test_corrupt_and_disconnecting_line_keeps_running_and_counts_what_was_injected(
        bundle_file: Path, broker: MosquittoBroker, tmp_path: Path) -> None:
    # Bit errors, dropped frames and board reboots on one pty: every loss the
    # simulator injected between two intact frames must show in the counters.
    rows = signal_rows(4000, seed=4)
    csv = write_csv(tmp_path / "data.csv", rows)
    faults = LineFaults(bit_error_rate=2e-5, drop_rate=0.02, disconnect_every=2.5, disconnect_for=0.3)
    with Simulator(load_csv(str(csv), rate_hz=500.0), realtime=False, faults=faults, seed=7,
                   fault_log=str(tmp_path / "faults.jsonl")) as sim:
        with running(base_flags(bundle_file, broker, tmp_path, sim.port_path)) as (runtime, windows):
            sim.start()
            assert sim.done.wait(60), "simulator did not finish"
            stats = runtime.decoder.stats
            truth = sim.truth
            spf = sim.samples_per_frame
            # Intact sample frames are either decoded or skipped while waiting for
            # the HELLO of a reboot whose own HELLO was lost; wait until all are in.
            wait_until(lambda: stats.samples + spf * stats.awaiting_hello >= truth["samples_sent"], 30,
                       f"decoder accounted for {truth['samples_sent']} samples")
            truth = dict(sim.truth)
            snap = runtime.snapshot()
    assert truth["frames_dropped"] > 0 and truth["frames_corrupted"] > 0 and truth["resets"] >= 3
    assert stats.samples + spf * stats.awaiting_hello == truth["samples_sent"]
    assert stats.lost_frames == truth["lost_detectable"]
    assert stats.resets == truth["resets_detectable"]
    assert snap["lost_frames"] == truth["lost_detectable"]
    assert runtime.metrics.gaps >= truth["resets"]   # every break restarted the windows
    assert len(windows) > 0 and runtime.fatal is None


def test_unplugged_port_is_reopened_and_windows_resume(bundle_file: Path, broker: MosquittoBroker, tmp_path: Path) -> None:
    # The pty itself goes away and comes back (a USB adapter unplugged). pyserial
    # flushes input on open, so bytes written before the reopen are lost, as on
    # real hardware; the test checks recovery, not exact counts.
    rows = signal_rows(3000, seed=5)
    csv = write_csv(tmp_path / "data.csv", rows)
    faults = LineFaults(disconnect_every=1.5, disconnect_for=0.3)
    link = tmp_path / "ttySIM"
    with Simulator(load_csv(str(csv), rate_hz=500.0), realtime=True, faults=faults, link=str(link), seed=8) as sim:
        with running(base_flags(bundle_file, broker, tmp_path, str(link))) as (runtime, windows):
            sim.start()
            assert sim.done.wait(60), "simulator did not finish"
            wait_until(lambda: runtime.metrics.reconnects >= sim.truth["resets"], 30, "one reconnect per unplug")
            after = runtime.metrics.windows
            resumed = runtime.decoder.stats.samples
    assert sim.truth["resets"] >= 3
    assert runtime.metrics.reconnects == sim.truth["resets"]
    assert runtime.metrics.gaps >= sim.truth["resets"] and after > 0 and resumed > 0
    assert runtime.fatal is None
