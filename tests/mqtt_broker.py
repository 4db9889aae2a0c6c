"""A private Mosquitto for tests: free port, generated config, optional TLS and passwords.

    from tests.mqtt_broker import MosquittoBroker, make_certs, PlantSubscriber

    with MosquittoBroker(tmp_path) as broker:            # plain, anonymous
        with PlantSubscriber(broker, "edgewatch/#") as plant:
            ...
            msg = plant.wait_for(lambda m: m.topic.endswith("/status"), timeout=10)

    certs = make_certs(tmp_path / "pki")                 # CA, server and client certs via openssl
    MosquittoBroker(tmp_path, tls=certs, users={"edge": "s3cret"}, require_client_cert=True)

``stop()`` and ``start()`` keep the port, so a test can take the broker away in
the middle of a stream and bring it back. Readiness is detected from the
broker's own log line, never by sleeping. A missing ``mosquitto`` binary fails
loudly (it is a required test component, not an optional one).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["MosquittoBroker", "Certs", "make_certs", "PlantSubscriber", "free_port", "MOSQUITTO"]

MOSQUITTO = os.environ.get("EDGEWATCH_MOSQUITTO", shutil.which("mosquitto") or "/usr/sbin/mosquitto")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certs(directory: Path, *, host: str = "localhost") -> Certs:
    """A throwaway CA plus server (CN/SAN ``host`` and 127.0.0.1) and client certificates."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=edgewatch-test-ca",
             "-keyout", "ca.key", "-out", "ca.crt", cwd=d)
    (d / "san.ext").write_text(f"subjectAltName=DNS:{host},IP:127.0.0.1\n")
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={host if name == 'server' else 'edge-client'}",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
        extra = ["-extfile", "san.ext"] if name == "server" else []
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-days", "2", "-out", f"{name}.crt", *extra, cwd=d)
    return Certs(d / "ca.crt", d / "server.crt", d / "server.key", d / "client.crt", d / "client.key")


class MosquittoBroker:
    """One mosquitto process with its own config in ``workdir``."""

    def __init__(self, workdir: Path, *, port: int | None = None, tls: Certs | None = None,
                 users: dict[str, str] | None = None, require_client_cert: bool = False,
                 persistent: bool = False) -> None:
        if not Path(MOSQUITTO).exists():
            raise RuntimeError(f"mosquitto not found at {MOSQUITTO!r}; install it (apt install mosquitto) "
                               "or set $EDGEWATCH_MOSQUITTO")
        self.workdir = Path(workdir) / f"mosquitto-{id(self):x}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.tls = tls
        self.users = users
        self.require_client_cert = require_client_cert
        self.persistent = persistent
        self.proc: subprocess.Popen[str] | None = None
        self.log: list[str] = []
        self._log_cond = threading.Condition()
        self._write_config()

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    def _write_config(self) -> None:
        # persistent=True keeps sessions and queued QoS 1 messages across stop()/start(),
        # so a clean_session=False subscriber misses nothing while the broker is away.
        persistence = ["persistence true", f"persistence_location {self.workdir}/"] if self.persistent else ["persistence false"]
        lines = [f"listener {self.port} 127.0.0.1", *persistence, "log_dest stderr",
                 "log_type error", "log_type warning", "log_type notice", "log_type information",
                 "connection_messages true"]
        if os.geteuid() == 0:
            # As root mosquitto drops to user "mosquitto", which cannot read our private temp files.
            lines.append("user root")
        if self.users:
            pw = self.workdir / "passwd"
            pw.write_text("")
            pw.chmod(0o600)
            for user, password in self.users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(pw), user, password], check=True, capture_output=True, timeout=30)
            lines += [f"password_file {pw}", "allow_anonymous false"]
        else:
            lines.append("allow_anonymous true")
        if self.tls:
            lines += [f"cafile {self.tls.ca}", f"certfile {self.tls.server_cert}", f"keyfile {self.tls.server_key}"]
            if self.require_client_cert:
                lines.append("require_certificate true")
        self.config = self.workdir / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 10.0) -> MosquittoBroker:
        ready = threading.Event()
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        proc = self.proc

        def pump() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                with self._log_cond:
                    self.log.append(line.rstrip())
                    self._log_cond.notify_all()
                if " running" in line:
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True, name="mosquitto-log").start()
        if not ready.wait(timeout) or proc.poll() is not None or not any(" running" in ln for ln in self.log):
            self.stop()
            raise RuntimeError(f"mosquitto did not start on port {self.port}:\n" + "\n".join(self.log[-20:]))
        return self

    def wait_for_log(self, text: str, timeout: float = 10.0) -> str:
        """The first broker log line containing ``text``; the log is read by a thread, so wait for it."""
        with self._log_cond:
            if not self._log_cond.wait_for(lambda: any(text in ln for ln in self.log), timeout=timeout):
                raise TimeoutError(f"{text!r} not in the broker log within {timeout} s; tail:\n" + "\n".join(self.log[-20:]))
            return next(ln for ln in self.log if text in ln)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None

    def __enter__(self) -> MosquittoBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PlantSubscriber:
    """A paho subscriber standing in for the plant: every message lands in a queue."""

    def __init__(self, broker: MosquittoBroker, topic: str = "#", *, username: str | None = None,
                 password: str | None = None, client_id: str | None = None, clean_session: bool = True) -> None:
        import paho.mqtt.client as mqtt

        self.broker = broker
        self.topic = topic
        self.messages: queue.Queue[Any] = queue.Queue()
        self.seen: list[Any] = []
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"plant-{id(self):x}",
                                  clean_session=clean_session)
        if username:
            self.client.username_pw_set(username, password)
        if broker.tls:
            self.client.tls_set(ca_certs=str(broker.tls.ca), certfile=str(broker.tls.client_cert),
                                keyfile=str(broker.tls.client_key))
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self._subscribed.set()
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self.client.reconnect_delay_set(1, 1)

    def __enter__(self) -> PlantSubscriber:
        self.client.connect(self.broker.url.split("//")[1].split(":")[0], self.broker.port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError(f"subscriber did not subscribe to {self.topic!r} within 10 s")
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def wait_for(self, predicate: Callable[[Any], bool], timeout: float = 10.0) -> Any:
        """The first message (new or already seen) matching ``predicate``; TimeoutError after ``timeout``."""
        for m in self.seen:
            if predicate(m):
                return m
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no matching message within {timeout} s; saw {[m.topic for m in self.seen][-20:]}")
            try:
                m = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(m)
            if predicate(m):
                return m

    def collect(self, topic_suffix: str, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """JSON payloads of the first ``count`` distinct-by-event-id messages on topics ending in ``topic_suffix``."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.json_on(topic_suffix)
            distinct = {p.get("event_id") for p in got}
            if len(distinct) >= count:
                return got
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{len(distinct)} of {count} distinct messages on *{topic_suffix} within {timeout} s")
            try:
                self.seen.append(self.messages.get(timeout=left))
            except queue.Empty:
                continue

    def json_on(self, topic_suffix: str) -> list[dict[str, Any]]:
        """Drain the queue, then the JSON payloads seen so far on topics ending in ``topic_suffix``."""
        while True:
            try:
                self.seen.append(self.messages.get_nowait())
            except queue.Empty:
                break
        return [json.loads(m.payload) for m in self.seen if m.topic.endswith(topic_suffix)]
