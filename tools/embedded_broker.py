"""A throwaway MQTT broker for the zero-setup demo (amqtt, pure Python).

Production gateways talk to the plant's Mosquitto; this exists so that
``edgewatch demo`` shows the whole loop on a machine with no broker installed.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

from edge_runtime.errors import BrokerUnavailableError, require

__all__ = ["EmbeddedBroker", "broker_reachable", "free_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def broker_reachable(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class EmbeddedBroker:
    """amqtt broker on 127.0.0.1:<free port> in a background thread; a context manager."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker: Any = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> EmbeddedBroker:
        amqtt_broker = require("amqtt.broker", "demo")
        ready = threading.Event()
        errors: list[BaseException] = []
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._broker = amqtt_broker.Broker(config, loop=loop)
                loop.run_until_complete(self._broker.start())
            except BaseException as err:  # reported to the caller below
                errors.append(err)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._broker.shutdown())
            loop.close()

        self._thread = threading.Thread(target=serve, name="embedded-mqtt", daemon=True)
        self._thread.start()
        if not ready.wait(15) or errors:
            raise BrokerUnavailableError(f"could not start the embedded MQTT broker on port {self.port}: {errors[0] if errors else 'timeout'}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=15)
