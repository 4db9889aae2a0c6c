"""MQTT side of the runtime: one paho client (callback API v2) draining the outbox.

* Events go :class:`~edge_runtime.store.Outbox` -> broker in ``seq`` order, QoS 1,
  at most ``max_inflight`` unacknowledged at a time (bounded memory), and a row is
  deleted only in ``on_publish`` (the PUBACK). While the broker is away nothing
  is sent; rows wait on disk. paho retransmits the few in flight after a
  reconnect; consumers de-duplicate by ``event_id``.
* ``status`` is retained: an ``online`` birth message on every connect and an
  ``offline`` last will (also sent on a clean shutdown).
* ``metrics``, ``scores`` and command ``ack`` messages are volatile: sent only
  while connected, otherwise dropped and counted.
* ``<prefix>cmd/#`` is subscribed on every connect; messages go to ``on_command``.

Network trouble is never an exception here: it is logged and counted, and the
client keeps reconnecting with backoff (``reconnect_min_s`` .. ``reconnect_max_s``).
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from edge_runtime.config import RuntimeConfig
from edge_runtime.errors import ConfigError, require
from edge_runtime.store import Outbox

__all__ = ["Publisher"]

log = logging.getLogger(__name__)


class Publisher:
    """Owns the MQTT connection; thread-safe ``notify``/``publish_volatile``."""

    def __init__(self, cfg: RuntimeConfig, outbox: Outbox, *, status: dict[str, Any],
                 on_command: Callable[[str, bytes], None] | None = None,
                 on_delivered: Callable[[int], None] | None = None, max_inflight: int = 32) -> None:
        self.cfg = cfg
        self.outbox = outbox
        self.on_command = on_command
        self.on_delivered = on_delivered
        self.max_inflight = max_inflight
        self._status = dict(status)
        self.connected = threading.Event()
        self.ever_connected = threading.Event()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._progress = threading.Event()      # set on every PUBACK
        self._inflight: dict[int, int] = {}      # paho mid -> outbox seq
        self._volatile: set[int] = set()
        self._early: set[int] = set()            # PUBACKs that beat publish() returning
        self._last_sent = 0
        self.delivered = 0
        self.volatile_dropped = 0
        self.connects = 0
        self.last_error: str | None = None
        self._thread: threading.Thread | None = None
        self._mqtt = require("paho.mqtt.client", "edge")
        self.client = self._make_client()

    # ------------------------------------------------------------ building
    def _make_client(self) -> Any:
        mqtt = self._mqtt
        cfg = self.cfg
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cfg.mqtt_client_id or f"edgewatch-{cfg.device_id}",
                             clean_session=True, protocol=mqtt.MQTTv311)
        client.enable_logger(logging.getLogger("edge_runtime.paho"))
        client.max_inflight_messages_set(self.max_inflight)
        client.max_queued_messages_set(self.max_inflight * 4)
        client.reconnect_delay_set(min_delay=max(1, round(cfg.reconnect_min_s)), max_delay=max(1, round(cfg.reconnect_max_s)))
        if cfg.mqtt_username:
            client.username_pw_set(cfg.mqtt_username, cfg.mqtt_password)
        if cfg.mqtt_tls:
            try:
                client.tls_set(ca_certs=str(cfg.tls_ca_file) if cfg.tls_ca_file else None,
                               certfile=str(cfg.tls_cert_file) if cfg.tls_cert_file else None,
                               keyfile=str(cfg.tls_key_file) if cfg.tls_key_file else None,
                               keyfile_password=cfg.tls_key_password, cert_reqs=ssl.CERT_REQUIRED)
            except (ssl.SSLError, OSError, ValueError) as err:
                files = ", ".join(f"{k}={str(v)!r}" for k, v in (("ca_file", cfg.tls_ca_file), ("cert_file", cfg.tls_cert_file),
                                                                  ("key_file", cfg.tls_key_file)) if v)
                raise ConfigError(f"TLS files ({files}) cannot be used: {err}; pass PEM files (and the key's passphrase "
                                  "in $EDGEWATCH_TLS_KEY_PASSWORD or tls.key_password_file)") from err
        client.will_set(self.cfg.topic("status"), self._status_payload("offline"), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _status_payload(self, state: str) -> bytes:
        return json.dumps({**self._status, "state": state, "ts": _utc_now()}, sort_keys=True).encode()

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        cfg = self.cfg
        try:
            self.client.connect_async(cfg.mqtt_host, cfg.mqtt_port, keepalive=cfg.keepalive)
        except (ValueError, OSError) as err:
            raise ConfigError(f"MQTT URL {cfg.mqtt_url!r} cannot be used ({err}); use mqtt://host:port") from err
        self.client.loop_start()
        self._thread = threading.Thread(target=self._drain, name="edgewatch-publisher", daemon=True)
        self._thread.start()

    def stop(self, flush_timeout: float = 5.0) -> None:
        """Send what can be sent within ``flush_timeout``, publish ``offline``, disconnect."""
        deadline = time.monotonic() + flush_timeout
        self.notify()
        while self.connected.is_set() and (len(self.outbox) or self._inflight):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._progress.clear()
            self._wake.set()
            self._progress.wait(timeout=min(left, 0.2))
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self.connected.is_set():
            info = self.client.publish(self.cfg.topic("status"), self._status_payload("offline"), qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=max(0.5, deadline - time.monotonic()))
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()

    def notify(self) -> None:
        """Tell the drain thread that the outbox has new rows."""
        self._wake.set()

    def set_status(self, status: dict[str, Any]) -> None:
        """Replace the birth message (after a bundle reload) and publish it now if connected."""
        self._status = dict(status)
        self.client.will_set(self.cfg.topic("status"), self._status_payload("offline"), qos=1, retain=True)
        if self.connected.is_set():
            self.publish_volatile("status", self._status_payload("online"), qos=1, retain=True)

    def publish_volatile(self, leaf: str, payload: bytes, *, qos: int = 0, retain: bool = False) -> bool:
        """Publish a message that is not worth keeping on disk; False (counted) if offline."""
        if not self.connected.is_set():
            self.volatile_dropped += 1
            return False
        info = self.client.publish(self.cfg.topic(leaf), payload, qos=qos, retain=retain)
        if info.rc != self._mqtt.MQTT_ERR_SUCCESS:
            self.volatile_dropped += 1
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
            else:
                self._volatile.add(info.mid)
        return info.rc == self._mqtt.MQTT_ERR_SUCCESS

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    # ----------------------------------------------------------- the drain
    def _drain(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=0.5)
            self._wake.clear()
            while self.connected.is_set() and not self._stop.is_set():
                room = self.max_inflight - len(self._inflight)
                if room <= 0:
                    break
                rows = self.outbox.pending(after=self._last_sent, limit=room)
                if not rows:
                    break
                for row in rows:
                    if not self._send(row.seq, row.topic, row.payload):
                        break

    def _send(self, seq: int, topic: str, payload: bytes) -> bool:
        info = self.client.publish(topic, payload, qos=1)
        if info.rc == self._mqtt.MQTT_ERR_QUEUE_SIZE:
            return False
        acked = False
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
                acked = True
            else:
                self._inflight[info.mid] = seq
            self._last_sent = seq
        if acked:
            self._delivered(seq)
        return True

    def _delivered(self, seq: int) -> None:
        self.outbox.delete(seq)
        self.delivered += 1
        self._progress.set()
        if self.on_delivered is not None:
            try:
                self.on_delivered(seq)
            except Exception:  # noqa: BLE001 - a metrics hook must not kill paho's thread
                log.exception("delivery hook failed")
        self._wake.set()

    # ------------------------------------------------------------ callbacks
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            self.last_error = f"broker refused the connection: {reason_code}"
            log.error("MQTT %s:%s refused the connection (%s); check mqtt.username and the password",
                      self.cfg.mqtt_host, self.cfg.mqtt_port, reason_code)
            return
        self.connects += 1
        log.info("MQTT connected to %s:%s; %d event(s) waiting in the outbox", self.cfg.mqtt_host, self.cfg.mqtt_port,
                 len(self.outbox))
        info = client.publish(self.cfg.topic("status"), self._status_payload("online"), qos=1, retain=True)
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
            else:
                self._volatile.add(info.mid)
        client.subscribe(self.cfg.topic("cmd/#"), qos=1)
        self.connected.set()
        self.ever_connected.set()
        self._wake.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        if was and not self._stop.is_set():
            log.warning("MQTT connection to %s:%s lost (%s); events queue on disk in %s until it is back",
                        self.cfg.mqtt_host, self.cfg.mqtt_port, reason_code, self.outbox.path)

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        if self.last_error != "unreachable":
            log.warning("MQTT broker %s:%s is unreachable; running on and queueing events on disk in %s",
                        self.cfg.mqtt_host, self.cfg.mqtt_port, self.outbox.path)
        self.last_error = "unreachable"

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason_code: Any, properties: Any) -> None:
        with self._lock:
            seq = self._inflight.pop(mid, None)
            if seq is None:
                if mid in self._volatile:
                    self._volatile.discard(mid)
                else:
                    self._early.add(mid)
                return
        self._delivered(seq)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        if self.on_command is None:
            return
        leaf = message.topic[len(self.cfg.topic("cmd/")):]
        try:
            self.on_command(leaf, bytes(message.payload))
        except Exception:  # noqa: BLE001 - user-supplied handlers must not kill paho's thread
            log.exception("command %r failed", leaf)


def _utc_now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
