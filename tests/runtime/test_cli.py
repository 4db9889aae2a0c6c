"""``edgewatch run`` at the command line: one-line errors, exit 2, TLS + passwords, no TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.mqtt_broker import MosquittoBroker, PlantSubscriber, make_certs
from tests.runtime.conftest import REPO, signal_rows, write_csv


def edgewatch(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "tools.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture
def replay_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "data.csv", signal_rows(400, seed=1, anomalies=[(200, 260)]))


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def test_bad_inputs_exit_2_with_one_line(bundle_file: Path, replay_csv: Path, tmp_path: Path) -> None:
    base = ["run", "--bundle", str(bundle_file), "--replay", str(replay_csv), "--device-id", "d1",
            "--mqtt", "mqtt://127.0.0.1:1", "--state-dir", str(tmp_path / "s")]
    assert_one_line_error(edgewatch(*base[:-2], "--state-dir", str(replay_csv / "x")), "state directory", "--state-dir")
    assert_one_line_error(edgewatch(*base, "--mqtt", "http://broker"), "MQTT URL 'http://broker' is invalid")
    assert_one_line_error(edgewatch(*base, env={"EDGEWATCH_ALARM_K": "many"}), "$EDGEWATCH_ALARM_K", "'many'")
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate")
    assert_one_line_error(edgewatch(*base, "--mqtt", "mqtts://127.0.0.1:1", "--tls-ca", str(garbage)), "TLS files", "ca.pem")
    assert_one_line_error(edgewatch(*base, "--bundle", str(tmp_path / "none.ewb")), "none.ewb")


def test_bundle_channels_not_sent_by_the_device_exit_2(bundle_file: Path, tmp_path: Path, broker: MosquittoBroker) -> None:
    wrong = write_csv(tmp_path / "wrong.csv", signal_rows(100)[:, :3], ["vib_x", "vib_y", "temperature"])
    result = edgewatch("run", "--bundle", str(bundle_file), "--replay", str(wrong), "--device-id", "d1",
                       "--mqtt", broker.url, "--state-dir", str(tmp_path / "s"))
    assert_one_line_error(result, "expects channels", "'vib_z'", "'current'")


def test_tls_client_cert_and_password_deliver_events_and_status(bundle_file: Path, replay_csv: Path, tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "pki")
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    with MosquittoBroker(tmp_path, tls=certs, users={"edge": "s3cret", "plant": "p"}, require_client_cert=True) as broker, \
            PlantSubscriber(broker, "edgewatch/#", username="plant", password="p") as plant:
        summary = tmp_path / "summary.json"
        result = edgewatch("run", "--bundle", str(bundle_file), "--replay", str(replay_csv), "--device-id", "d1",
                           "--mqtt", broker.url.replace("127.0.0.1", "localhost"), "--tls-ca", str(certs.ca),
                           "--tls-cert", str(certs.client_cert), "--tls-key", str(certs.client_key),
                           "--mqtt-username", "edge", "--mqtt-password-file", str(pw),
                           "--state-dir", str(tmp_path / "s"), "--summary", str(summary))
        assert result.returncode == 0, result.stderr
        # How many events the replay raises depends on the model; the point
        # here is that every one of them crosses TLS + password auth.
        produced = json.loads(summary.read_text())["events"]
        assert produced >= 1
        events = plant.collect("/events", produced, timeout=20)
        offline = plant.wait_for(lambda m: m.topic.endswith("/status") and b'"offline"' in m.payload, timeout=20)
    online = [e for e in plant.json_on("/status") if e["state"] == "online"]
    assert online and online[0]["model_sha256"] and online[0]["delegate"] in ("xnnpack", "cpu")
    assert {e["seq"] for e in events} == set(range(1, produced + 1))
    first = events[0]
    for key in ("event_id", "device_id", "model_id", "model_version", "model_sha256", "window_start", "window_end",
                "score", "threshold", "state", "top_channels", "seq"):
        assert key in first
    assert first["state"] == "raised" and first["window_end"].endswith("Z")
    assert json.loads(offline.payload)["state"] == "offline"


def test_run_help_imports_neither_tensorflow_nor_heavy_extras() -> None:
    code = ("import sys; from tools.cli import cli; from click.testing import CliRunner; "
            "r = CliRunner().invoke(cli, ['run', '--help']); assert r.exit_code == 0, r.output; "
            "import edge_runtime.cli, edge_runtime.config, edge_runtime.alarms; "
            "bad = [m for m in ('tensorflow', 'paho', 'serial', 'ai_edge_litert') if m in sys.modules]; print(bad)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
