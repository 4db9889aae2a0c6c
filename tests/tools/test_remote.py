"""Remote tuning against a real ``edgewatch run`` process (simulator on a pty) and a real Mosquitto."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edge_runtime.bundle import Bundle
from edge_runtime.remote_threshold import threshold_bounds
from tests.mqtt_broker import MosquittoBroker, PlantSubscriber
from tests.tools.conftest import start_runtime, wait_status
from tools.cli import cli


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_set_threshold_on_a_running_device_is_acked_applied_audited_and_survives_restart(
        bundle: Path, broker: MosquittoBroker, plant: PlantSubscriber, simulator: str, tmp_path: Path) -> None:
    b = Bundle.load(bundle)
    lo, hi = threshold_bounds(b.calibration_scores, b.threshold)
    new = round(float(np.percentile(b.calibration_scores, 99.9)), 6)
    assert lo < new < hi
    state = tmp_path / "state"
    rt = start_runtime(bundle, broker, simulator, state)
    try:
        wait_status(plant, "gw-1", lambda d: d["model_sha256"] == b.sha256)
        plant.wait_for(lambda m: m.topic == "edgewatch/gw-1/metrics", timeout=30)

        code, out = run_cli("devices", "--mqtt", broker.url, "--wait", "2")
        assert code == 0, out
        line = next(ln for ln in out.splitlines() if ln.startswith("gw-1"))
        assert "online" in line and f"{b.model_id} v{b.version}" in line and b.sha256[:12] in line
        assert f"{b.threshold:.6g}" in line

        code, out = run_cli("threshold", "set", "--device", "gw-1", "--mqtt", broker.url, "--value", str(new),
                            "--reason", "nuisance alarms on night shift")
        assert code == 0, out
        assert f"-> {new}" in out and "broker-acl" in out
        wait_status(plant, "gw-1", lambda d: d["threshold"] == new)

        # Bad values never reach the pipeline: the device answers ok=false with the reason.
        code, out = run_cli("threshold", "set", "--device", "gw-1", "--mqtt", broker.url, "--value", str(hi * 100))
        assert code == 2 and out.startswith("Error: device 'gw-1' rejected 'threshold/set'") and "outside" in out
        assert len(out.strip().splitlines()) == 1
        code, out = run_cli("threshold", "set", "--device", "gw-1", "--mqtt", broker.url, "--value", "nan")
        assert code == 2 and "finite positive" in out     # refused before sending

        raw = [({"value": float("nan")}, "not a finite positive number"), ({"value": -1.0}, "not a finite positive"),
               ({"value": "high"}, "must be a number"), ({"value": 1.0, "colour": "red"}, "unknown field"),
               ({"value": 1.0, "method": "sigma:3"}, "exactly one of"), ({"method": "f1"}, "needs labelled data")]
        for args, reason in raw:
            cid = uuid.uuid4().hex
            plant.client.publish("edgewatch/gw-1/cmd/threshold/set",
                                 json.dumps({"id": cid, "device": "gw-1", **args}), qos=1)
            ack = json.loads(plant.wait_for(lambda m: m.topic == "edgewatch/gw-1/ack"
                                            and json.loads(m.payload).get("id") == cid, timeout=15).payload)
            assert ack["ok"] is False and reason in ack["error"], (args, ack)

        # A method is computed on the device from its own calibration scores.
        code, out = run_cli("threshold", "set", "--device", "gw-1", "--mqtt", broker.url, "--method", "percentile:99")
        assert code == 0, out
        p99 = float(np.percentile(b.calibration_scores, 99))
        wait_status(plant, "gw-1", lambda d: abs(d["threshold"] - p99) < 1e-9)
        code, out = run_cli("threshold", "set", "--device", "gw-1", "--mqtt", broker.url, "--value", str(new))
        assert code == 0, out
    finally:
        assert rt.stop() == 0

    audit = [json.loads(ln) for ln in (state / "audit.jsonl").read_text().splitlines()]
    accepted = [a for a in audit if a["ok"]]
    assert accepted[0]["old"] == pytest.approx(b.threshold) and accepted[0]["new"] == new
    assert accepted[0]["reason"] == "nuisance alarms on night shift"
    assert accepted[0]["user"] and accepted[0]["auth"] == "broker-acl"
    assert sum(not a["ok"] for a in audit) >= len(raw) + 1

    # Restarted, the device keeps the remotely set threshold (the retained status now says offline,
    # so any online status comes from the new process).
    with PlantSubscriber(broker, "edgewatch/gw-1/status") as after:
        rt2 = start_runtime(bundle, broker, simulator, state)
        try:
            status = wait_status(after, "gw-1", timeout=60)
            assert status["threshold"] == new
        finally:
            rt2.stop()


def test_signed_commands_required_when_the_device_has_a_command_key(
        bundle: Path, broker: MosquittoBroker, plant: PlantSubscriber, simulator: str, tmp_path: Path,
        keypair: tuple[Path, Path], other_keypair: tuple[Path, Path]) -> None:
    b = Bundle.load(bundle)
    new = round(float(np.percentile(b.calibration_scores, 99.9)), 6)
    rt = start_runtime(bundle, broker, simulator, tmp_path / "state",
                       env={"EDGEWATCH_SECURITY_COMMAND_PUBLIC_KEY": str(keypair[1])})
    try:
        wait_status(plant, "gw-1")
        base = ["threshold", "set", "--device", "gw-1", "--mqtt", broker.url, "--value", str(new)]
        code, out = run_cli(*base)
        assert code == 2 and "unsigned" in out
        code, out = run_cli(*base, "--key", str(other_keypair[0]))
        assert code == 2 and "signed by key" in out and "trusts key" in out
        code, out = run_cli(*base, "--key", str(keypair[0]))
        assert code == 0 and "authorized by signature" in out, out
        wait_status(plant, "gw-1", lambda d: d["threshold"] == new)

        # A captured signed command cannot be replayed, nor redirected by editing it.
        from edge_runtime.signing import load_private_key, sign_command

        signed = sign_command({"id": "fixed-1", "device": "gw-1", "cmd": "threshold/set", "value": new,
                               "ts": __import__("time").time()}, load_private_key(keypair[0]))
        tampered = {**signed, "id": "fixed-2", "value": new * 1.01}
        for payload, expect in ((signed, True), (signed, "already used"), (tampered, "does not match")):
            plant.client.publish("edgewatch/gw-1/cmd/threshold/set", json.dumps(payload), qos=1)
            ack = _next_ack(plant, payload["id"])
            assert (ack["ok"] is True) if expect is True else (expect in ack.get("error", "")), ack
    finally:
        rt.stop()


_consumed: set[int] = set()


def _next_ack(plant: PlantSubscriber, cid: str) -> dict:
    """The next not-yet-consumed ack with this id."""
    def match(m: object) -> bool:
        return (m.topic == "edgewatch/gw-1/ack" and id(m) not in _consumed  # type: ignore[attr-defined]
                and json.loads(m.payload).get("id") == cid)  # type: ignore[attr-defined]
    m = plant.wait_for(match, timeout=15)
    _consumed.add(id(m))
    return json.loads(m.payload)


def test_unreachable_broker_is_one_error_line() -> None:
    from tests.mqtt_broker import free_port

    code, out = run_cli("threshold", "set", "--device", "x", "--mqtt", f"mqtt://127.0.0.1:{free_port()}", "--value", "1")
    assert code == 1 and out.startswith("Error: MQTT broker") and len(out.strip().splitlines()) == 1
