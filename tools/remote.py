"""Operator side of MQTT: ``edgewatch devices`` and the command/ack round trip.

Topics follow the runtime's default layout ``<root>/<device>/...`` with root
``edgewatch`` (see edge_runtime/EVENTS.md): ``status`` (retained birth/will),
``metrics`` (periodic health), ``cmd/<name>`` (commands in), ``ack`` (answers).

Import-light: paho loads inside the functions.
"""

from __future__ import annotations

import getpass
import json
import os
import queue
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from edge_runtime.errors import BrokerUnavailableError, ConfigError, TransportError

__all__ = ["devices", "OperatorClient", "send_command", "mqtt_options", "CommandRejected", "operator_client_from"]


class CommandRejected(ConfigError):
    """The device answered ok=false: the command was invalid or unauthorized (exit 2)."""


def mqtt_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The broker flags shared by operator commands."""
    opts = [
        click.option("--mqtt", "mqtt_url", required=True, metavar="URL", help="Broker: mqtt://host:port or mqtts://host:port."),
        click.option("--username", default=None, help="MQTT user (the operator account under the broker ACL)."),
        click.option("--password-file", type=click.Path(dir_okay=False), default=None,
                     help="File holding the MQTT password (or set $EDGEWATCH_MQTT_PASSWORD)."),
        click.option("--tls-ca", type=click.Path(dir_okay=False), default=None, help="CA certificate (PEM) for mqtts://."),
        click.option("--tls-cert", type=click.Path(dir_okay=False), default=None, help="Client certificate (PEM)."),
        click.option("--tls-key", type=click.Path(dir_okay=False), default=None, help="Client key (PEM)."),
        click.option("--root", default="edgewatch", show_default=True, help="Topic root: topics are ROOT/<device>/..."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


class OperatorClient:
    """A short-lived paho client: connect (bounded), subscribe (waits for SUBACK), publish, collect."""

    def __init__(self, url: str, *, username: str | None = None, password_file: str | None = None,
                 tls_ca: str | None = None, tls_cert: str | None = None, tls_key: str | None = None,
                 timeout: float = 10.0) -> None:
        from edge_runtime.errors import require

        self._mqtt = require("paho.mqtt.client", "edge")
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or port == -1:
            raise ConfigError(f"--mqtt {url!r} is invalid; use mqtt://host:port or mqtts://host:port")
        self.url, self.host = url, parts.hostname
        self.port = port or (8883 if parts.scheme == "mqtts" else 1883)
        self.timeout = timeout
        self.messages: queue.Queue[Any] = queue.Queue()
        self._events: dict[str, queue.Queue[Any]] = {"connect": queue.Queue(), "subscribe": queue.Queue()}
        mqtt = self._mqtt
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"edgewatch-op-{uuid.uuid4().hex[:10]}",
                                  protocol=mqtt.MQTTv311)
        password = None
        if password_file:
            try:
                password = Path(password_file).read_text().strip()
            except OSError as err:
                raise ConfigError(f"--password-file {password_file!r}: cannot read it ({err.strerror})") from err
        password = password or os.environ.get("EDGEWATCH_MQTT_PASSWORD")
        if username:
            self.client.username_pw_set(username, password)
        if parts.scheme == "mqtts":
            try:
                self.client.tls_set(ca_certs=tls_ca, certfile=tls_cert, keyfile=tls_key)
            except (OSError, ValueError) as err:
                raise ConfigError(f"TLS files cannot be used ({err}); pass PEM files to --tls-ca/--tls-cert/--tls-key") from err
        self.client.on_connect = lambda c, u, f, rc, p: self._events["connect"].put(rc)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self._events["subscribe"].put((mid, rcs))
        self.client.on_message = lambda c, u, m: self.messages.put(m)

    def __enter__(self) -> OperatorClient:
        try:
            self.client.connect(self.host, self.port, keepalive=30)
        except (OSError, ValueError) as err:
            raise BrokerUnavailableError(f"MQTT broker {self.url!r} is unreachable ({err}); check --mqtt, the network "
                                         "and that the broker runs") from err
        self.client.loop_start()
        try:
            rc = self._events["connect"].get(timeout=self.timeout)
        except queue.Empty:
            self.__exit__()
            raise BrokerUnavailableError(f"MQTT broker {self.url!r} did not answer within {self.timeout:g} s") from None
        if rc.is_failure:
            self.__exit__()
            raise BrokerUnavailableError(f"MQTT broker {self.url!r} refused the connection ({rc}); check --username "
                                         "and the password")
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def subscribe(self, topic: str) -> None:
        _, mid = self.client.subscribe(topic, qos=1)
        try:
            got, rcs = self._events["subscribe"].get(timeout=self.timeout)
        except queue.Empty:
            raise TransportError(f"no SUBACK for {topic!r} within {self.timeout:g} s") from None
        if any(rc.is_failure for rc in rcs):
            raise CommandRejected(f"the broker refused the subscription to {topic!r} ({rcs[0]}); the ACL does not let "
                                  "this user read it: use the operator account")

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout=self.timeout)
        if not info.is_published():
            raise TransportError(f"publishing to {topic!r} was not acknowledged by the broker within {self.timeout:g} s")

    def next_message(self, deadline: float) -> Any | None:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        try:
            return self.messages.get(timeout=left)
        except queue.Empty:
            return None


def operator_client_from(params: dict[str, Any], timeout: float = 10.0) -> OperatorClient:
    return OperatorClient(params["mqtt_url"], username=params.get("username"), password_file=params.get("password_file"),
                          tls_ca=params.get("tls_ca"), tls_cert=params.get("tls_cert"), tls_key=params.get("tls_key"),
                          timeout=timeout)


def who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def send_command(client: OperatorClient, device: str, name: str, args: dict[str, Any], *, root: str = "edgewatch",
                 key_path: str | None = None, timeout: float = 15.0) -> dict[str, Any]:
    """Publish ``<root>/<device>/cmd/<name>`` and wait for the matching ack; the ack's ``result``.

    Raises :class:`CommandRejected` (exit 2) when the device answers ok=false and
    :class:`TransportError` when no answer comes within ``timeout``.
    """
    payload = {"id": uuid.uuid4().hex, "device": device, "cmd": name, "user": who(), "ts": time.time(), **args}
    if key_path is not None:
        from edge_runtime.signing import load_private_key, sign_command

        payload = sign_command(payload, load_private_key(key_path))
    prefix = f"{root}/{device}/"
    client.subscribe(prefix + "ack")
    client.publish(prefix + f"cmd/{name}", json.dumps(payload).encode())
    deadline = time.monotonic() + timeout
    while True:
        m = client.next_message(deadline)
        if m is None:
            raise TransportError(f"device {device!r} did not acknowledge {name!r} (id {payload['id']}) within {timeout:g} s; "
                                 f"check that it is online ('edgewatch devices --mqtt {client.url}') and uses topic root {root!r}")
        if m.topic != prefix + "ack":
            continue
        try:
            ack = json.loads(m.payload)
        except ValueError:
            continue
        if not isinstance(ack, dict) or ack.get("id") != payload["id"]:
            continue
        if not ack.get("ok"):
            raise CommandRejected(f"device {device!r} rejected {name!r}: {ack.get('error')}")
        return dict(ack.get("result") or {})


# ------------------------------------------------------------------ devices
def _health(metrics: dict[str, Any] | None, status: dict[str, Any]) -> str:
    if status.get("state") != "online":
        return "offline"
    if metrics is None:
        return "? (no metrics yet)"
    issues = []
    if not metrics.get("mqtt_connected", True):
        issues.append("mqtt down")
    for key, label in (("outbox_depth", "queued"), ("decode_errors", "decode errors"), ("lost_frames", "lost frames"),
                       ("events_dropped", "dropped")):
        v = metrics.get(key)
        if isinstance(v, (int, float)) and v > 0:
            issues.append(f"{label} {v}")
    if metrics.get("shelved"):
        issues.append("shelved")
    return "ok" if not issues else ", ".join(issues)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@mqtt_options
@click.option("--wait", type=click.FloatRange(min=0.1), default=3.0, show_default=True,
              help="Seconds to listen; alarm state and health come with the devices' metrics messages.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per device instead of a table.")
def devices(wait: float, as_json: bool, **params: Any) -> None:
    """List devices seen on their status topics: model version, threshold, alarm state, health."""
    root = params["root"]
    seen: dict[str, dict[str, Any]] = {}
    with operator_client_from(params) as client:
        client.subscribe(f"{root}/+/status")
        client.subscribe(f"{root}/+/metrics")
        deadline = time.monotonic() + wait
        while (m := client.next_message(deadline)) is not None:
            parts = m.topic.split("/")
            if len(parts) != 3:
                continue
            try:
                doc = json.loads(m.payload)
            except ValueError:
                continue
            if isinstance(doc, dict):
                seen.setdefault(parts[1], {})[parts[2]] = doc
    rows = []
    for device, d in sorted(seen.items()):
        status, metrics = d.get("status", {}), d.get("metrics")
        rows.append({"device": device, "state": status.get("state", "?"), "model_id": status.get("model_id"),
                     "model_version": status.get("model_version"), "model_sha256": status.get("model_sha256"),
                     "threshold": status.get("threshold"),
                     "alarm": (metrics or {}).get("alarm_state", "?"), "health": _health(metrics, status),
                     "since": status.get("ts")})
    if as_json:
        for r in rows:
            click.echo(json.dumps(r, sort_keys=True))
        return
    if not rows:
        click.echo(f"no devices seen on {root}/+/status within {wait:g} s")
        return
    header = ("DEVICE", "STATE", "MODEL", "SHA256", "THRESHOLD", "ALARM", "HEALTH")
    table = [header] + [(r["device"], r["state"], f"{r['model_id']} v{r['model_version']}", str(r["model_sha256"])[:12],
                         f"{r['threshold']:.6g}" if isinstance(r["threshold"], (int, float)) else "?", r["alarm"],
                         r["health"]) for r in rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())

