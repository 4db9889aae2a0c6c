"""Fixtures for the operator tools: keys, a real broker, a simulator on a pty and ``edgewatch run`` processes.

Every wait is bounded and event-driven: processes are watched line by line,
MQTT messages arrive in queues (tests.mqtt_broker.PlantSubscriber).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.mqtt_broker import MosquittoBroker, PlantSubscriber

REPO = Path(__file__).resolve().parents[2]


class Proc:
    """A subprocess whose stdout and stderr lines are collected; ``wait_line`` blocks with a deadline."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})})
        self._threads = [threading.Thread(target=self._pump, args=(stream,), daemon=True)
                         for stream in (self.proc.stdout, self.proc.stderr)]
        for t in self._threads:
            t.start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            with self._cond:
                self.lines.append(line.rstrip())
                self._cond.notify_all()

    def wait_line(self, pred: Any, timeout: float = 30.0) -> str:
        with self._cond:
            ok = self._cond.wait_for(lambda: any(pred(ln) for ln in self.lines) or self.proc.poll() is not None, timeout)
            hit = next((ln for ln in self.lines if pred(ln)), None)
        if not ok or hit is None:
            raise TimeoutError(f"expected line not seen within {timeout} s (exit {self.proc.poll()}); tail:\n"
                               + "\n".join(self.lines[-30:]))
        return hit

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout=10)
        for t in self._threads:
            t.join(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return code


def edgewatch(*args: str) -> list[str]:
    return [sys.executable, "-m", "tools.cli", *args]


@pytest.fixture
def bundle(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A private copy of the session's real bundle (tests change and sign it).

    ``EDGEWATCH_TEST_BUNDLE`` names a prebuilt one instead of training ``tiny_bundle``.
    """
    src = os.environ.get("EDGEWATCH_TEST_BUNDLE") or request.getfixturevalue("tiny_bundle")
    dst = tmp_path / "model.ewb"
    shutil.copy(src, dst)
    return dst


@pytest.fixture(scope="session")
def keypair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from edge_runtime.signing import generate_keypair

    return generate_keypair(tmp_path_factory.mktemp("keys") / "operator")


@pytest.fixture(scope="session")
def other_keypair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from edge_runtime.signing import generate_keypair

    return generate_keypair(tmp_path_factory.mktemp("keys2") / "intruder")


@pytest.fixture
def simulator() -> Iterator[str]:
    """``edgewatch simulate`` on a pty, looping synthetic vibration at 250 Hz; yields the port path."""
    sim = Proc(edgewatch("simulate", "--rate", "250", "--seconds", "20", "--loop"))
    try:
        port = sim.wait_line(lambda ln: ln.startswith("/dev/"), timeout=30)
        yield port
    finally:
        sim.stop()


def start_runtime(bundle: Path, broker: MosquittoBroker, port: str, state_dir: Path, device: str = "gw-1",
                  env: dict[str, str] | None = None) -> Proc:
    return Proc(edgewatch("run", "--bundle", str(bundle), "--serial", port, "--mqtt", broker.url, "--device-id", device,
                          "--state-dir", str(state_dir), "--metrics-interval", "1"), env=env)


def wait_status(plant: PlantSubscriber, device: str, pred: Any = lambda d: True, timeout: float = 60.0) -> dict[str, Any]:
    def match(m: Any) -> bool:
        if m.topic != f"edgewatch/{device}/status":
            return False
        d = json.loads(m.payload)
        return d.get("state") == "online" and pred(d)

    return json.loads(plant.wait_for(match, timeout=timeout).payload)
