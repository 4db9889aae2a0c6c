"""Remote commands over MQTT against a running ``edgewatch run`` process and a real Mosquitto.

``shelve`` (alarms.py, ISA-18.2): while shelved, an alarm whose condition is
met is *not published*; if the condition still holds when the shelf ends
(``unshelve`` command, or the shelf's time running out) it is announced then.
Every answer arrives on ``<prefix>ack`` with the request's ``id``.

The simulator plays, in real time on a pty, 1 s of normal signal then a
sustained fault. ``scores`` is on for every window, so the test sees the
windows exceeding the threshold while nothing is published on ``events``.
Every wait is on an MQTT message or a log line, with a deadline.
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from firmware_bridge.simulator import Simulator
from firmware_bridge.sources import load_csv
from tests.mqtt_broker import MosquittoBroker, PlantSubscriber
from tests.runtime.conftest import RuntimeProcess, signal_rows, write_csv

DEVICE = "pump9"
PREFIX = f"edgewatch/{DEVICE}/"
RATE = 500.0
FAULT_FROM = 500            # rows: 1 s of normal signal, then the fault until the end
ROWS = 500 * 12
ALARM_TOML = ("[alarm]\nk = 2\nn = 3\nm = 5\ndeadband = 0.0\nflood_limit = 1000\n"
              "[mqtt]\nscores_every = 1\nmetrics_interval_s = 0.5\n")


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


class Operator:
    """The plant side: sends commands and reads what the device publishes."""

    def __init__(self, plant: PlantSubscriber) -> None:
        self.plant = plant
        self._n = 0

    def send(self, name: str, **args: Any) -> str:
        self._n += 1
        rid = f"{name}-{self._n}"
        info = self.plant.client.publish(PREFIX + "cmd/" + name, json.dumps({"id": rid, **args}), qos=1)
        info.wait_for_publish(timeout=5)
        return rid

    def ack(self, rid: str, timeout: float = 10.0) -> dict[str, Any]:
        msg = self.plant.wait_for(lambda m: m.topic == PREFIX + "ack" and json.loads(m.payload).get("id") == rid,
                                  timeout=timeout)
        return json.loads(msg.payload)

    def call(self, name: str, timeout: float = 10.0, **args: Any) -> dict[str, Any]:
        return self.ack(self.send(name, **args), timeout=timeout)

    def wait_until_listening(self, timeout: float = 15.0) -> None:
        """``ping`` until answered: the runtime subscribes to ``cmd/#`` just after it logs the connection."""
        deadline = time.monotonic() + timeout
        while True:
            rid = self.send("ping")
            try:
                self.ack(rid, timeout=1.0)
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no answer to ping within {timeout} s") from None

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(m.payload) for m in self.plant.seen if m.topic == PREFIX + "events"]

    def scores(self) -> list[dict[str, Any]]:
        self.plant.json_on("/scores")  # drain
        return [json.loads(m.payload) for m in self.plant.seen if m.topic == PREFIX + "scores"]


@contextmanager
def device(bundle: Path, broker: MosquittoBroker, tmp_path: Path) -> Iterator[tuple[RuntimeProcess, Simulator, Operator]]:
    rows = signal_rows(ROWS, seed=9, anomalies=[(FAULT_FROM, ROWS)], rate=RATE)
    csv = write_csv(tmp_path / "fault.csv", rows)
    cfg = tmp_path / "edge.toml"
    cfg.write_text(ALARM_TOML)
    with PlantSubscriber(broker, PREFIX + "#") as plant, \
            Simulator(load_csv(str(csv), rate_hz=RATE), realtime=True) as sim, \
            RuntimeProcess(["--bundle", str(bundle), "--serial", sim.port_path, "--mqtt", broker.url, "--device-id", DEVICE,
                            "--state-dir", str(tmp_path / "state"), "--config", str(cfg)]) as rt:
        rt.wait_for_log("MQTT connected")
        op = Operator(plant)
        op.wait_until_listening()
        yield rt, sim, op


def over_threshold_while_shelved(op: Operator, at_least: int, timeout: float) -> int:
    """Wait until ``at_least`` scored windows exceeded their threshold; return how many windows were scored."""
    deadline = time.monotonic() + timeout
    while True:
        scores = op.scores()
        if sum(s["score"] > s["threshold"] for s in scores) >= at_least:
            return len(scores)
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"fewer than {at_least} windows over the threshold within {timeout} s")
        try:
            op.plant.seen.append(op.plant.messages.get(timeout=left))
        except queue.Empty:
            continue


@pytest.mark.parametrize("shelf_ends_by", ["unshelve", "expiry"])
def test_shelved_alarm_is_not_published_and_is_announced_when_the_shelf_ends_while_still_active(
        bundle_file: Path, broker: MosquittoBroker, tmp_path: Path, shelf_ends_by: str) -> None:
    with device(bundle_file, broker, tmp_path) as (rt, sim, op):
        duration = 3600.0 if shelf_ends_by == "unshelve" else 6.0
        sent = time.time()
        ack = op.call("shelve", duration_s=duration)
        assert ack["ok"] is True and ack["cmd"] == "shelve", ack
        until = ack["result"]["shelved_until"]
        assert sent + duration - 1 <= until <= time.time() + duration
        state = json.loads((tmp_path / "state" / "runtime_state.json").read_text())
        assert state["shelved_until"] == until                    # persisted before the ack

        sim.start()
        # The fault is on: many windows over the threshold (k=2 of n=3 needs two) ...
        scored = over_threshold_while_shelved(op, at_least=20, timeout=30)
        # ... and a metrics snapshot taken after them says nothing was announced.
        snap = json.loads(op.plant.wait_for(
            lambda m: m.topic == PREFIX + "metrics" and json.loads(m.payload)["windows"] >= scored, timeout=10).payload)
        assert snap["shelved"] is True
        assert snap["events"] == 0 and snap["alarm_state"] == "cleared" and snap["outbox_depth"] == 0
        assert op.events() == []
        assert not [ln for ln in rt.lines if "alarm raised" in ln]

        if shelf_ends_by == "unshelve":
            ack = op.call("unshelve")
            assert ack["ok"] is True and ack["result"] == {"shelved_until": 0.0}, ack
            lifted = ack["ts"] - 0.5      # a window read just before the ack may be scored just after it
        else:
            lifted = until                # shelved while window_end < shelved_until
        raised = json.loads(op.plant.wait_for(lambda m: m.topic == PREFIX + "events", timeout=15).payload)
        assert rt.stop() == 0
    assert raised["state"] == "raised" and raised["seq"] == 1
    assert raised["score"] > raised["threshold"]
    assert epoch(raised["window_end"]) >= lifted                   # announced when the shelf ended, not before
    assert json.loads((tmp_path / "state" / "runtime_state.json").read_text())["shelved_until"] == \
        (0.0 if shelf_ends_by == "unshelve" else until)


def test_shelve_out_of_range_is_refused_on_the_ack_topic_and_changes_nothing(
        bundle_file: Path, broker: MosquittoBroker, tmp_path: Path) -> None:
    with device(bundle_file, broker, tmp_path) as (rt, _sim, op):
        ack = op.call("shelve", duration_s=-5)
        metrics = json.loads(op.plant.wait_for(lambda m: m.topic == PREFIX + "metrics", timeout=10).payload)
        assert rt.stop() == 0
    assert ack["ok"] is False and ack["cmd"] == "shelve"
    assert "duration_s must be between 0 and 604800" in ack["error"]
    assert metrics["shelved"] is False
    assert not (tmp_path / "state" / "runtime_state.json").exists()
    assert any("command 'shelve' rejected" in ln for ln in rt.lines)
