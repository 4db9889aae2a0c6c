"""Store-and-forward with a real broker: outage mid-stream, SIGKILL, unreachable at start.

The runtime runs as a subprocess fed by the simulator on a pty (real time,
500 Hz, an anomaly burst every 0.8 s so alarms raise and clear often). The
broker outage is 5 s or less here (documented shortening of the 30 s case; the
outbox does not care how long the broker is away).
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from firmware_bridge.simulator import Simulator
from firmware_bridge.sources import load_csv
from tests.mqtt_broker import MosquittoBroker, PlantSubscriber
from tests.runtime.conftest import RuntimeProcess, signal_rows, write_csv

ALARM_TOML = "[alarm]\nk = 1\nn = 1\nm = 2\ndeadband = 0.0\nflood_limit = 1000\n"


def bursty_source(tmp_path: Path, seconds: float) -> str:
    n = int(500 * seconds)
    bursts = [(s, s + 150) for s in range(200, n - 200, 400)]
    return write_csv(tmp_path / "bursty.csv", signal_rows(n, seed=11, anomalies=bursts)).as_posix()


def runtime_args(bundle: Path, port: str, broker: MosquittoBroker, tmp_path: Path) -> list[str]:
    cfg = tmp_path / "edge.toml"
    cfg.write_text(ALARM_TOML)
    return ["--bundle", str(bundle), "--serial", port, "--mqtt", broker.url, "--device-id", "pump3",
            "--state-dir", str(tmp_path / "state"), "--config", str(cfg), "--metrics-interval", "1"]


def logged_seqs(proc: RuntimeProcess) -> list[int]:
    return [int(m.group(1)) for ln in proc.lines if (m := re.search(r"alarm \w+ .*seq (\d+)\)", ln))]


def first_arrivals(events: list[dict]) -> list[int]:
    seen: dict[str, int] = {}
    for e in events:
        seen.setdefault(e["event_id"], e["seq"])
    return list(seen.values())


def test_broker_outage_mid_stream_loses_nothing_and_keeps_order(bundle_file: Path, tmp_path: Path) -> None:
    with MosquittoBroker(tmp_path, persistent=True) as broker, \
            PlantSubscriber(broker, "edgewatch/pump3/events", client_id="plant", clean_session=False) as plant, \
            Simulator(load_csv(bursty_source(tmp_path, 14), rate_hz=500.0), realtime=True) as sim:
        with RuntimeProcess(runtime_args(bundle_file, sim.port_path, broker, tmp_path)) as rt:
            rt.wait_for_log("MQTT connected")
            sim.start()
            plant.collect("/events", 3, timeout=30)
            broker.stop()
            during = len(logged_seqs(rt))
            rt.wait_for_log("alarm ", count=during + 4, timeout=30)   # events raised while the broker is away
            broker.start()
            assert sim.done.wait(60)
            assert rt.stop() == 0
        produced = logged_seqs(rt)
        events = plant.collect("/events", len(produced), timeout=30)
    arrivals = first_arrivals(events)
    assert sorted(set(arrivals)) == produced == list(range(1, len(produced) + 1))
    assert arrivals == sorted(arrivals)                      # in order
    assert len({e["event_id"] for e in events}) == len(produced)
    assert any("connection to" in ln and "lost" in ln for ln in rt.lines)


def test_sigkill_with_broker_down_then_restart_delivers_every_event(bundle_file: Path, tmp_path: Path) -> None:
    broker = MosquittoBroker(tmp_path)          # not started: unreachable at start
    with Simulator(load_csv(bursty_source(tmp_path, 30), rate_hz=500.0), realtime=True) as sim:
        args = runtime_args(bundle_file, sim.port_path, broker, tmp_path)
        with RuntimeProcess(args) as rt:
            rt.wait_for_log("unreachable")              # says so, and keeps running
            sim.start()
            rt.wait_for_log("alarm ", count=4, timeout=30)
            rt.kill()
        before = logged_seqs(rt)
        with sqlite3.connect(tmp_path / "state" / "outbox.db") as db:
            on_disk = [r[0] for r in db.execute("SELECT seq FROM outbox ORDER BY seq")]
        assert on_disk[: len(before)] == before            # persisted before it was logged
        with broker, PlantSubscriber(broker, "edgewatch/pump3/events") as plant:
            with RuntimeProcess(args) as rt2:
                events = plant.collect("/events", len(on_disk), timeout=30)
                rt2.stop()
    arrivals = first_arrivals(events)
    assert arrivals[: len(on_disk)] == on_disk and on_disk[0] == 1
    assert sorted(arrivals) == arrivals
