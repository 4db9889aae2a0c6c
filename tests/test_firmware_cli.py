"""CLI commands, the synthetic generator, and capture/replay."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest
from click.testing import CliRunner

from firmware_bridge import synthetic
from firmware_bridge.capture import CaptureWriter, read_capture, replay
from firmware_bridge.cli import capture, simulate, synth
from firmware_bridge.protocol import Samples, encode_hello, encode_samples


def test_synthetic_is_deterministic_and_labelled() -> None:
    a = synthetic.generate(2.0, 500.0, fault="imbalance", fault_start=0.5, seed=4)
    b = synthetic.generate(2.0, 500.0, fault="imbalance", fault_start=0.5, seed=4)
    assert a == b
    assert a.columns == ("vib_x", "vib_y", "vib_z", "current") and a.units == ("g", "g", "g", "A")
    assert len(a.rows) == 1000 and a.labels == [0] * 500 + [1] * 500
    assert synthetic.generate(2.0, 500.0, seed=5).rows != synthetic.generate(2.0, 500.0, seed=4).rows


@pytest.mark.parametrize("fault", synthetic.FAULTS)
def test_each_fault_raises_vibration_energy(fault: str) -> None:
    s = synthetic.generate(4.0, 2000.0, fault=fault, fault_start=0.5, seed=1)
    def rms(rows):
        return (sum(r[0] ** 2 for r in rows) / len(rows)) ** 0.5
    assert rms(s.rows[-1000:]) > 1.3 * rms(s.rows[:1000])


def test_synth_cli_writes_csv(tmp_path) -> None:
    out = tmp_path / "s.csv"
    res = CliRunner().invoke(synth, ["--seconds", "1", "--rate", "200", "--fault", "bearing", "--out", str(out)])
    assert res.exit_code == 0, res.output
    with out.open() as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["time", "vib_x", "vib_y", "vib_z", "current", "label"]
    assert len(rows) == 201 and rows[-1][-1] == "1"


@pytest.mark.parametrize(
    ("cmd", "args", "needle"),
    [
        (synth, ["--seconds", "1", "--rate", "0", "--out", "x.csv"], "--rate"),
        (synth, ["--seconds", "1", "--out", "/no/such/dir/x.csv"], "does not exist"),
        (simulate, ["--source", "missing.csv"], "missing.csv"),
        (simulate, ["--source", "cmapss"], "cmapss:PATH"),
        (capture, ["--serial", "/dev/ttyNOPE", "--out", "c.ewcap"], "/dev/ttyNOPE"),
        (capture, ["--replay", "nope.ewcap"], "nope.ewcap"),
    ],
    ids=["bad-rate", "bad-dir", "missing-csv", "cmapss-no-path", "missing-port", "missing-capture"],
)
def test_bad_input_is_one_error_line_exit_2(cmd, args, needle, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cmd, args)
    assert res.exit_code == 2, res.output
    error_lines = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1 and needle in error_lines[0]
    assert "Traceback" not in res.output


def test_unknown_csv_column_names_the_alternatives(tmp_path) -> None:
    f = tmp_path / "d.csv"
    f.write_text("time,a\n0,1\n0.1,2\n")
    res = CliRunner().invoke(simulate, ["--source", str(f), "--columns", "zz"])
    assert res.exit_code == 2 and "'zz'" in res.output and "available columns: time, a" in res.output


def test_capture_replay_is_deterministic(tmp_path) -> None:
    path = tmp_path / "c.ewcap"
    wire = encode_hello(0, 0, device_id="d", firmware="1", channels=("a",), units=("g",), sample_rate_hz=10.0)
    wire += b"".join(encode_samples(s, s * 100_000, [(s,)]) for s in range(1, 20))
    with CaptureWriter(path, {"port": "test"}) as cap:
        for k in range(0, len(wire), 13):
            cap.write(wire[k:k + 13], t=float(k))
    assert b"".join(c for _, c in read_capture(path)) == wire
    ev1, st1 = replay(path)
    ev2, _ = replay(path)
    assert ev1 == ev2 and st1.samples == 19
    assert [e.values for e in ev1 if isinstance(e, Samples)][-1] == ((19.0,),)
    res = CliRunner().invoke(capture, ["--replay", str(path)])
    assert res.exit_code == 0 and '"samples": 19' in res.output


def test_simulate_prints_pty_path_and_capture_records_it(tmp_path) -> None:
    out = tmp_path / "live.ewcap"
    sim = subprocess.Popen(
        [sys.executable, "-m", "tools.cli", "simulate", "--seconds", "1", "--rate", "500", "--fast"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        port = sim.stdout.readline().strip()
        assert port.startswith("/dev/")
        res = CliRunner().invoke(capture, ["--serial", port, "--out", str(out), "--seconds", "3"])
        assert res.exit_code == 0, res.output
        assert sim.wait(timeout=30) == 0
    finally:
        sim.kill() if sim.poll() is None else None
        sim.stdout.close()
        sim.stderr.close()
    _, stats = replay(out)
    assert stats.samples == 500 and stats.lost_frames == 0
