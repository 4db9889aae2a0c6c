"""Shared fixtures: real data files and a real trained bundle (real int8 TFLite model).

The bundle is trained once per test session on synthetic vibration data, small
enough to train in seconds on two cores.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mqtt_broker import MosquittoBroker, PlantSubscriber

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
CMAPSS = SHARED / "data" / "cmapss" / "train_FD001.txt"

TINY_WINDOW = 32


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A private Mosquitto on a free port with its own config (tests/mqtt_broker.py)."""
    with MosquittoBroker(tmp_path) as b:
        yield b


@pytest.fixture
def plant(broker: MosquittoBroker) -> Iterator[PlantSubscriber]:
    """A paho subscriber standing in for the plant, on everything under edgewatch/."""
    with PlantSubscriber(broker, "edgewatch/#") as p:
        yield p


@pytest.fixture(scope="session")
def cmapss_path() -> Path:
    """C-MAPSS FD001; a test that needs it fails loudly when it is missing."""
    assert CMAPSS.is_file(), f"{CMAPSS} is missing: tests need ../shared/data/cmapss/ beside the repository"
    return CMAPSS


@pytest.fixture(scope="session")
def vibration_csvs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Synthetic vibration CSVs: 'healthy' (12 s) and 'bearing' (12 s, fault from the middle), at 1 kHz."""
    from firmware_bridge.synthetic import generate, write_csv

    d = tmp_path_factory.mktemp("vibration")
    paths = {"healthy": d / "healthy.csv", "bearing": d / "bearing.csv"}
    write_csv(generate(12, 1000.0, seed=1), paths["healthy"])
    write_csv(generate(12, 1000.0, fault="bearing", fault_start=0.5, seed=2), paths["bearing"])
    return paths


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory, vibration_csvs: dict[str, Path]) -> Path:
    """A real bundle: conv autoencoder, window 32, int8 runtime model, channels vib_x, vib_y, vib_z, current."""
    from trainer.api import DataSpec, train_bundle

    out = tmp_path_factory.mktemp("bundle") / "tiny.ewb"
    train_bundle(DataSpec((str(vibration_csvs["healthy"]),), label_column="label"), out, model="conv",
                 window=TINY_WINDOW, stride=4, epochs=6, patience=3, seed=0, verbose=0, log=lambda _: None)
    return out
