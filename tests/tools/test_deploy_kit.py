"""deploy/: the Mosquitto ACL against a real broker, and sanity of the unit, install script and playbook."""

from __future__ import annotations

import configparser
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.mqtt_broker import MosquittoBroker, PlantSubscriber, free_port, make_certs

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
USERS = {"operator": "op-secret", "pump3": "pump3-secret", "fan7": "fan7-secret"}


@pytest.fixture(scope="module")
def plant_broker(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """deploy/mosquitto/ as shipped, with paths and port rewritten into a temp dir."""
    d = tmp_path_factory.mktemp("mosq")
    certs = make_certs(d / "certs")
    port = free_port()
    broker = MosquittoBroker(d, port=port, tls=certs, users=USERS)   # writes the password file via mosquitto_passwd
    passwd = broker.workdir / "passwd"
    (d / "edgewatch.acl").write_text((DEPLOY / "mosquitto" / "edgewatch.acl").read_text())
    conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    for old, new in {"listener 8883": f"listener {port} 127.0.0.1",
                     "/etc/mosquitto/edgewatch.passwd": str(passwd), "/etc/mosquitto/edgewatch.acl": str(d / "edgewatch.acl"),
                     "/etc/mosquitto/certs/ca.crt": str(certs.ca), "/etc/mosquitto/certs/server.crt": str(certs.server_cert),
                     "/etc/mosquitto/certs/server.key": str(certs.server_key),
                     "/var/lib/mosquitto/": f"{broker.workdir}/"}.items():
        assert old in conf, f"deploy/mosquitto/mosquitto.conf no longer contains {old!r}"
        conf = conf.replace(old, new)
    # As root, mosquitto drops to user "mosquitto", which cannot read private temp files.
    run_as = "user root\n" if os.geteuid() == 0 else ""
    broker.config.write_text(conf + "log_dest stderr\nlog_type all\n" + run_as)
    with broker:
        yield broker


def client(broker: MosquittoBroker, user: str, topic: str) -> PlantSubscriber:
    return PlantSubscriber(broker, topic, username=user, password=USERS[user], client_id=f"{user}-{topic.count('/')}")


def publish(sub: PlantSubscriber, topic: str, payload: str) -> None:
    sub.client.publish(topic, payload, qos=1).wait_for_publish(timeout=10)


def test_device_cannot_publish_under_another_device_or_to_its_own_command_topic(plant_broker: MosquittoBroker) -> None:
    with client(plant_broker, "operator", "edgewatch/#") as operator, client(plant_broker, "pump3", "edgewatch/pump3/cmd/#") as pump3:
        publish(pump3, "edgewatch/fan7/status", "spoofed")
        publish(pump3, "edgewatch/pump3/cmd/threshold/set", "self-command")
        publish(pump3, "edgewatch/pump3/status", "sentinel")   # same client, QoS 1: delivered after the two above
        operator.wait_for(lambda m: m.payload == b"sentinel", timeout=10)
        payloads = [m.payload for m in operator.seen]
        assert b"spoofed" not in payloads and b"self-command" not in payloads
        assert "Denied PUBLISH from pump3" in plant_broker.wait_for_log("Denied PUBLISH from pump3")


def test_device_reads_only_its_own_command_topic(plant_broker: MosquittoBroker) -> None:
    with client(plant_broker, "operator", "edgewatch/operator-unused") as operator, \
            client(plant_broker, "fan7", "edgewatch/+/cmd/#") as fan7:
        publish(operator, "edgewatch/pump3/cmd/threshold/set", json.dumps({"value": 1}))
        publish(operator, "edgewatch/fan7/cmd/threshold/set", json.dumps({"value": 2}))
        # pump3's command was published first: had the ACL let it through, it would arrive first.
        got = fan7.wait_for(lambda m: True, timeout=10)
        assert got.topic == "edgewatch/fan7/cmd/threshold/set"
        fan7.json_on("")  # drain
        assert [m.topic for m in fan7.seen] == ["edgewatch/fan7/cmd/threshold/set"]


def test_wrong_password_is_refused(plant_broker: MosquittoBroker) -> None:
    import paho.mqtt.client as mqtt

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="intruder")
    c.username_pw_set("pump3", "guess")
    c.tls_set(ca_certs=str(plant_broker.tls.ca))
    codes: list[object] = []
    done = __import__("threading").Event()
    c.on_connect = lambda cl, u, f, rc, p: (codes.append(rc), done.set())
    c.connect("127.0.0.1", plant_broker.port)
    c.loop_start()
    try:
        assert done.wait(10)
    finally:
        c.disconnect()
        c.loop_stop()
    assert codes[0].is_failure


def test_systemd_unit_runs_hardened_as_a_dedicated_user() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment]
    unit.read_string((DEPLOY / "systemd" / "edgewatch@.service").read_text())
    s = unit["Service"]
    assert s["User"] == "edgewatch" and s["Restart"] == "on-failure"
    assert s["ProtectSystem"] == "strict" and s["NoNewPrivileges"] == "yes"
    assert "edgewatch/%i" in s["StateDirectory"] and "run --config" in s["ExecStart"]
    assert s["ExecReload"].endswith("-HUP $MAINPID")


def test_install_script_parses_and_handles_32_bit_arm() -> None:
    script = DEPLOY / "install.sh"
    subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)
    text = script.read_text()
    assert "[edge" in text and "armv7l" in text and "tflite-runtime" in text


def test_example_config_is_accepted_by_the_runtime_loader(tmp_path: Path) -> None:
    from edge_runtime.config import _flatten, _read_toml

    flat = _flatten(_read_toml(DEPLOY / "edgewatch.example.toml"), "example")
    assert flat["bundle"].endswith("/current/bundle.ewb") and flat["mqtt.username"] == flat["device_id"]


def test_ansible_playbook_verifies_switches_and_rolls_back() -> None:
    play = yaml.safe_load((DEPLOY / "ansible" / "deploy-bundle.yml").read_text())[0]
    text = json.dumps(play)
    assert play["serial"] == 1 and "keys verify" in text and "mv -Tf" in text and "Roll back" in text
