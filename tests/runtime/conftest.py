"""Fixtures for the runtime tests: a real bundle, a private Mosquitto, a plant subscriber.

The bundle is trained once per session on healthy ``signal_rows`` data (a real
int8 model on vib_x, vib_y, vib_z, current; window 32, stride 8). ``EDGEWATCH_TEST_BUNDLE``
points at a prebuilt one instead, to iterate without training.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
CHANNELS = ["vib_x", "vib_y", "vib_z", "current"]


@pytest.fixture(scope="session")
def bundle_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real int8 bundle trained on healthy :func:`signal_rows` data, the machine these tests simulate.

    Alarms must raise on the injected bursts and clear after them, so the
    model has to know this signal; a model of another machine would alarm on
    everything and never clear.
    """
    override = os.environ.get("EDGEWATCH_TEST_BUNDLE")
    if override:
        return Path(override)
    from trainer.api import DataSpec, train_bundle

    d = tmp_path_factory.mktemp("runtime-bundle")
    healthy = write_csv(d / "healthy.csv", signal_rows(6000, seed=100))
    out = d / "signal.ewb"
    train_bundle(DataSpec((str(healthy),)), out, window=32, stride=8, epochs=12, patience=3, seed=0,
                 verbose=0, log=lambda _: None)
    return out


def signal_rows(n: int, *, seed: int = 0, anomalies: list[tuple[int, int]] = (), rate: float = 100.0) -> np.ndarray:
    """Synthetic vibration rows (n, 4) in float32, with bursts of noise on vib_x where asked."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    x = np.stack([np.sin(2 * np.pi * 5 * t), np.cos(2 * np.pi * 5 * t), 0.5 * np.sin(2 * np.pi * 11 * t),
                  np.full(n, 3.0)], axis=1)
    x += rng.normal(0, [0.1, 0.1, 0.1, 0.05], size=x.shape)
    for start, stop in anomalies:
        x[start:stop, 0] += rng.normal(0, 3.0, size=stop - start)
        x[start:stop, 3] += 2.0
    return x.astype(np.float32)


def write_csv(path: Path, rows: np.ndarray, channels: list[str] = CHANNELS) -> Path:
    """CSV whose values are exactly the float32 values (repr of the float32 as a float)."""
    with open(path, "w") as fh:
        fh.write(",".join(channels) + "\n")
        for r in rows:
            fh.write(",".join(repr(float(v)) for v in r) + "\n")
    return path


class RuntimeProcess:
    """``edgewatch run`` in a subprocess, stderr collected line by line."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen([sys.executable, "-m", "tools.cli", "run", *args], cwd=REPO,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **(env or {})})
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line.rstrip())
                self._cond.notify_all()
        self.proc.stderr.close()
        with self._cond:
            self.lines.append("<EOF>")
            self._cond.notify_all()

    def wait_for_log(self, text: str, timeout: float = 30.0, count: int = 1) -> list[str]:
        with self._cond:
            ok = self._cond.wait_for(lambda: sum(text in ln for ln in self.lines) >= count or "<EOF>" in self.lines,
                                     timeout=timeout)
            hits = [ln for ln in self.lines if text in ln]
        if not ok or len(hits) < count:
            raise TimeoutError(f"{count}x {text!r} not logged within {timeout} s; log tail:\n" + "\n".join(self.lines[-30:]))
        return hits

    def stop(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        code = self.proc.wait(timeout=timeout)
        self.wait_for_log("<EOF>", timeout=timeout)
        return code

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.wait_for_log("<EOF>", timeout=10)

    def __enter__(self) -> RuntimeProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.proc.poll() is None:
            self.kill()
