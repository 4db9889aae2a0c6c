"""The C reference encoder: host unit tests and cross-language golden vectors.

gcc and make are required (CI has them); a missing compiler fails loudly
instead of skipping, because these tests are the protocol's contract.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess

import pytest

from firmware_bridge.protocol import FrameDecoder, Heartbeat, Hello, Samples, encode_hello
from tests.vectors.make_frames import cases, f32

FIRMWARE = pathlib.Path(__file__).resolve().parents[1] / "firmware_bridge" / "firmware"
VECTORS = json.loads((pathlib.Path(__file__).parent / "vectors" / "frames.json").read_text())


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    for tool in ("gcc", "make"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool!r} is not on PATH; the firmware tests need gcc and make (apt-get install build-essential)")
    out = tmp_path_factory.mktemp("fwbuild")
    proc = subprocess.run(
        ["make", "-C", str(FIRMWARE), f"BUILD={out}", "all"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"firmware build failed (-Wall -Wextra -Werror):\n{proc.stdout}\n{proc.stderr}"
    return out


@pytest.fixture(scope="module")
def c_golden(build: pathlib.Path) -> dict[str, str]:
    out = subprocess.run([str(build / "golden")], capture_output=True, text=True, check=True, timeout=30).stdout
    return dict(line.split() for line in out.splitlines())


def test_c_unit_tests_pass(build: pathlib.Path) -> None:
    proc = subprocess.run([str(build / "test_ewframe")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout
    assert "all C tests passed" in proc.stdout


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_c_bytes_match_golden_vectors(name: str, c_golden: dict[str, str]) -> None:
    assert c_golden[name] == VECTORS[name]["hex"]


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_python_bytes_match_golden_vectors(name: str) -> None:
    assert cases()[name]["hex"] == VECTORS[name]["hex"]


def test_python_decodes_c_heartbeats_and_hello(c_golden: dict[str, str]) -> None:
    dec = FrameDecoder()
    events = dec.feed(bytes.fromhex(c_golden["heartbeat_zero"]) + bytes.fromhex(c_golden["heartbeat_wrap"]))
    assert events[-1] == Heartbeat(65535, (1 << 40) + 5)
    (hello,) = [e for e in FrameDecoder().feed(bytes.fromhex(c_golden["hello_adxl345"])) if isinstance(e, Hello)]
    spec = VECTORS["hello_adxl345"]["hello"]
    assert (hello.device_id, hello.firmware, list(hello.channels), list(hello.units)) == (
        spec["device_id"], spec["firmware"], spec["channels"], spec["units"])
    assert hello.boot_id == spec["boot_id"] and hello.sample_rate_hz == 1600.0
    assert hello.scales == (f32(0.0039),) * 3


@pytest.mark.parametrize("name", ["samples_i16", "samples_f32", "samples_i16_long"])
def test_python_decodes_c_samples_exactly(name: str, c_golden: dict[str, str]) -> None:
    vec = VECTORS[name]
    n_ch = len(vec["rows"][0])
    scale = 0.0039 if vec["format"] == 1 else 1.0
    # The C frames follow a HELLO (seq 0) that describes their channels.
    prefix = encode_hello(0, 0, device_id="c", firmware="1", channels=[f"c{i}" for i in range(n_ch)],
                          units=["g"] * n_ch, sample_rate_hz=1600.0, scales=[scale] * n_ch)
    dec = FrameDecoder()
    events = dec.feed(prefix + bytes.fromhex(c_golden[name]))
    samples = [e for e in events if isinstance(e, Samples)]
    assert len(samples) == 1, events
    ev = samples[0]
    factor = f32(scale) if vec["format"] == 1 else 1.0
    assert (ev.seq, ev.device_time_us) == (vec["seq"], vec["time_us"])
    assert ev.values == tuple(tuple(v * factor for v in row) for row in vec["rows"])
    assert dec.stats.samples == len(vec["rows"])
