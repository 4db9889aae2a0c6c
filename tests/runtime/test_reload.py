"""SIGHUP reload against a running ``edgewatch run`` process and a real Mosquitto.

The bundle file is replaced the way a deployment does it (write beside, then
``os.replace``), then the process gets SIGHUP. A valid new bundle must show in
the retained ``status`` message; a corrupt one must leave the old model
running, with the reason in the log. Every wait is on a log line or an MQTT
message, with a deadline.
"""

from __future__ import annotations

import io
import json
import os
import signal
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from edge_runtime.bundle import Bundle
from firmware_bridge.simulator import Simulator
from firmware_bridge.sources import load_csv
from tests.mqtt_broker import MosquittoBroker, PlantSubscriber
from tests.runtime.conftest import RuntimeProcess, signal_rows, write_csv

DEVICE = "press7"
STATUS = f"edgewatch/{DEVICE}/status"
ALARM_TOML = "[alarm]\nk = 1\nn = 1\nm = 2\ndeadband = 0.0\nflood_limit = 1000\n"


def replace_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.new")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def truncated(original: bytes) -> bytes:
    return original[: len(original) // 2]


def tampered(original: bytes) -> bytes:
    """A well-formed zip whose runtime model no longer matches the sha256 in the manifest."""
    src = zipfile.ZipFile(io.BytesIO(original))
    runtime_member = json.loads(src.read("manifest.json"))["runtime"]["model"]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == runtime_member:
                data = data[:-64] + bytes(64)
            dst.writestr(name, data)
    return out.getvalue()


@contextmanager
def runtime_on_pty(bundle: Path, broker: MosquittoBroker, tmp_path: Path) -> Iterator[tuple[RuntimeProcess, Simulator]]:
    """The runtime on a simulator's pty; the simulator is started by the test when it wants data."""
    n = 500 * 6
    csv = write_csv(tmp_path / "bursty.csv", signal_rows(n, seed=5, anomalies=[(s, s + 150) for s in range(200, n - 200, 400)]))
    cfg = tmp_path / "edge.toml"
    cfg.write_text(ALARM_TOML)
    with Simulator(load_csv(str(csv), rate_hz=500.0), realtime=True) as sim, \
            RuntimeProcess(["--bundle", str(bundle), "--serial", sim.port_path, "--mqtt", broker.url, "--device-id", DEVICE,
                            "--state-dir", str(tmp_path / "state"), "--config", str(cfg)]) as rt:
        rt.wait_for_log("running: device")        # signal handlers are installed before this line
        rt.wait_for_log("MQTT connected")
        yield rt, sim


def retained_status(broker: MosquittoBroker, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20.0) -> dict[str, Any]:
    """The retained status a subscriber arriving now is given, once it matches ``predicate``.

    A status published while a subscriber is connecting reaches it live (not
    retained), so each attempt is a fresh subscriber until one is handed a
    matching retained message or ``timeout`` passes.
    """
    deadline = time.monotonic() + timeout
    while True:
        with PlantSubscriber(broker, STATUS) as late:
            try:
                msg = late.wait_for(lambda m: m.retain and predicate(json.loads(m.payload)),
                                    timeout=min(3.0, max(0.1, deadline - time.monotonic())))
                return json.loads(msg.payload)
            except TimeoutError:
                if time.monotonic() >= deadline:
                    raise


@pytest.fixture
def bundle_copy(bundle_file: Path, tmp_path: Path) -> Path:
    """The session bundle copied to where the runtime reads it, so the test may replace it."""
    path = tmp_path / "deployed" / "model.ewb"
    path.parent.mkdir()
    path.write_bytes(bundle_file.read_bytes())
    return path


def test_sighup_with_a_new_valid_bundle_reports_its_version_in_the_retained_status(
        bundle_copy: Path, broker: MosquittoBroker, tmp_path: Path) -> None:
    old = Bundle.load(bundle_copy)
    with runtime_on_pty(bundle_copy, broker, tmp_path) as (rt, _sim):
        before = retained_status(broker, lambda s: s["state"] == "online")
        assert (before["model_version"], before["model_sha256"]) == (old.version, old.sha256)

        new = Bundle.load(bundle_copy)
        new.manifest["model"]["version"] = old.version + 1
        new.save(tmp_path / "staging.ewb")           # a different, valid bundle...
        replace_atomically(bundle_copy, (tmp_path / "staging.ewb").read_bytes())   # ...swapped in at once
        rt.proc.send_signal(signal.SIGHUP)

        rt.wait_for_log(f"bundle reloaded: model {old.model_id} v{old.version + 1}", timeout=30)
        after = retained_status(broker, lambda s: s["model_version"] == old.version + 1)
        assert rt.proc.poll() is None
        assert rt.stop() == 0
    assert after["state"] == "online"
    assert after["model_sha256"] == Bundle.load(bundle_copy).sha256 != old.sha256
    assert after["model_id"] == old.model_id
    assert not [ln for ln in rt.lines if "reload failed" in ln]


@pytest.mark.parametrize("corrupt, reason", [(truncated, "not a zip archive"), (tampered, "sha256 does not match")],
                         ids=["truncated", "tampered-member"])
def test_sighup_with_a_corrupt_bundle_keeps_the_old_model_and_logs_why(
        bundle_copy: Path, broker: MosquittoBroker, tmp_path: Path, corrupt: Callable[[bytes], bytes], reason: str) -> None:
    old = Bundle.load(bundle_copy)
    with PlantSubscriber(broker, f"edgewatch/{DEVICE}/events") as plant, \
            runtime_on_pty(bundle_copy, broker, tmp_path) as (rt, sim):
        replace_atomically(bundle_copy, corrupt(bundle_copy.read_bytes()))
        rt.proc.send_signal(signal.SIGHUP)

        [failed] = rt.wait_for_log("bundle reload failed", timeout=30)
        assert f"keeping model {old.model_id} v{old.version}" in failed
        assert reason in failed, failed
        assert rt.proc.poll() is None, "the runtime exited on a bad bundle"

        sim.start()                                    # data after the failed reload: the old model scores it
        event = json.loads(plant.wait_for(lambda m: m.topic.endswith("/events"), timeout=30).payload)
        status = retained_status(broker, lambda s: s["state"] == "online")
        assert rt.stop() == 0
    assert (event["model_version"], event["model_sha256"]) == (old.version, old.sha256)
    assert (status["model_version"], status["model_sha256"]) == (old.version, old.sha256)
    assert not [ln for ln in rt.lines if "bundle reloaded" in ln]
