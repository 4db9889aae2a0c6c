"""Configuration: TOML < environment < flags, validated with one-line messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_runtime.config import load_config
from edge_runtime.errors import ConfigError

BASE = {"bundle": "m.ewb", "device_id": "pump3", "mqtt.url": "mqtt://127.0.0.1:1883", "serial.url": "/dev/ttyUSB0"}


def test_precedence_toml_then_env_then_flags(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('device_id = "from-toml"\n[alarm]\nk = 2\nn = 4\n[mqtt]\nkeepalive = 60\n')
    env = {"EDGEWATCH_ALARM_K": "3", "EDGEWATCH_DEVICE_ID": "from-env"}
    cfg = load_config(toml, {**BASE, "device_id": None}, env=env)
    assert (cfg.device_id, cfg.alarm.k, cfg.alarm.n, cfg.keepalive) == ("from-env", 3, 4, 60)
    cfg = load_config(toml, BASE, env=env)
    assert cfg.device_id == "pump3"
    assert cfg.prefix == "edgewatch/pump3/"
    assert (cfg.mqtt_host, cfg.mqtt_port, cfg.mqtt_tls) == ("127.0.0.1", 1883, False)


def test_secrets_come_from_env_or_file_and_never_from_the_config_body(tmp_path: Path) -> None:
    cfg = load_config(None, BASE, env={"EDGEWATCH_MQTT_PASSWORD": "pw-env"})
    assert cfg.mqtt_password == "pw-env"
    assert "pw-env" not in repr(cfg)
    pw = tmp_path / "pw"
    pw.write_text("pw-file\n")
    assert load_config(None, {**BASE, "mqtt.password_file": str(pw)}, env={}).mqtt_password == "pw-file"
    toml = tmp_path / "c.toml"
    toml.write_text('[mqtt]\npassword = "x"\n')
    with pytest.raises(ConfigError, match="password_file"):
        load_config(toml, BASE, env={})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"mqtt.url": "http://x:1"}, r"MQTT URL 'http://x:1' is invalid"),
        ({"mqtt.url": "mqtt://host:99999"}, r"MQTT URL"),
        ({"device_id": "a/b"}, r"device id 'a/b' is invalid"),
        ({"alarm.k": "0"}, r"alarm.k must be an integer >= 1 \(got '0'\)"),
        ({"alarm.deadband": 1.5}, r"deadband must be a number >= 0.0 and <= 0.99 \(got 1.5\)"),
        ({"serial.mode": "morse"}, r"must be one of auto, binary, text \(got 'morse'\)"),
        ({"delegate": "tpu"}, r"delegate 'tpu' is unknown"),
        ({"serial.url": None}, r"exactly one of --serial PORT and --replay FILE"),
        ({"tls.ca_file": "/nonexistent/ca.pem"}, r"no such file"),
        ({"mqtt.topic_prefix": "plant/#/"}, r"topic prefix"),
    ],
    ids=["scheme", "port", "device-id", "k", "deadband", "mode", "delegate", "no-source", "tls-file", "prefix"],
)
def test_invalid_values_raise_one_line_naming_the_value(override: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_config(None, {**BASE, **override}, env={})
    assert "\n" not in str(info.value)


def test_k_larger_than_n_and_unknown_keys_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"alarm.k \(6\) must be <= alarm.n \(5\)"):
        load_config(None, {**BASE, "alarm.k": 6}, env={})
    toml = tmp_path / "c.toml"
    toml.write_text("[alarm]\nkk = 1\n")
    with pytest.raises(ConfigError, match="unknown key 'alarm.kk'"):
        load_config(toml, BASE, env={})
    toml.write_text("not toml = = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(toml, BASE, env={})


def test_bad_env_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"\$EDGEWATCH_MQTT_KEEPALIVE must be an integer between 5 and 3600 \(got 'soon'\)"):
        load_config(None, BASE, env={"EDGEWATCH_MQTT_KEEPALIVE": "soon"})
