"""``edgewatch threshold BUNDLE ...`` and ``sign``/``keys`` on the real bundle; bad input is one line, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge_runtime.bundle import Bundle
from tools.cli import cli


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_analysis_reports_alarms_per_day_recall_precision_and_writes_a_png(bundle: Path, vibration_csvs: dict[str, Path],
                                                                           tmp_path: Path) -> None:
    png = tmp_path / "thr.png"
    code, out = run_cli("threshold", str(bundle), "--data", str(vibration_csvs["bearing"]), "--labels", "label",
                        "--method", "percentile:99.5", "--method", "f1", "--method", "alarms-per-day:100000",
                        "--plot", str(png))
    assert code == 0, out
    assert "ALARMS/DAY" in out and "RECALL" in out and "PRECISION" in out
    rows = {ln.split()[0]: ln.split() for ln in out.splitlines() if ln.startswith(("percentile:", "f1", "alarms-per-day:"))}
    assert set(rows) == {"percentile:99.5", "f1", "alarms-per-day:100000"}
    assert float(rows["alarms-per-day:100000"][4]) <= 100000
    assert 0.5 < float(rows["f1"][5]) <= 1.0                     # recall on the bearing fault
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_apply_writes_a_new_version_with_an_audit_entry_and_keeps_the_old(bundle: Path, vibration_csvs: dict[str, Path]) -> None:
    before = bundle.read_bytes()
    code, out = run_cli("threshold", str(bundle), "--data", str(vibration_csvs["healthy"]), "--method", "percentile:99.9",
                        "--apply", "--reason", "nuisance alarms")
    assert code == 0, out
    new = bundle.with_name("model.v2.ewb")
    b = Bundle.load(new)
    old = Bundle.load(bundle)
    assert bundle.read_bytes() == before and b.version == old.version + 1
    entry = b.manifest["audit"][-1]
    assert entry["why"] == "nuisance alarms" and entry["old"] == old.threshold and entry["new"] == b.threshold
    assert entry["method"] == "percentile:99.9" and entry["who"] and entry["when"]
    assert b.manifest["threshold"]["history"][-1]["value"] == old.threshold
    code, out = run_cli("info", str(new))
    assert code == 0 and "nuisance alarms" in out
    # A later re-export keeps the engineer's value rather than recalibrating it away.
    code, out = run_cli("export", str(new), "--out", str(new.with_name("model.v2-reexported.ewb")))
    assert code == 0, out
    assert Bundle.load(new.with_name("model.v2-reexported.ewb")).threshold == b.threshold
    assert "kept the operator's threshold" in out


@pytest.mark.parametrize("value,expect", [("nan", "finite positive"), ("-1", "finite positive"), ("1e9", "outside")],
                         ids=["nan", "negative", "far-outside"])
def test_bad_threshold_values_are_refused(bundle: Path, vibration_csvs: dict[str, Path], value: str, expect: str) -> None:
    code, out = run_cli("threshold", str(bundle), "--data", str(vibration_csvs["healthy"]), "--apply", "--value", value,
                        "--reason", "x")
    assert code == 2 and out.startswith("Error: ") and expect in out and len(out.strip().splitlines()) == 1
    assert not bundle.with_name("model.v2.ewb").exists()


@pytest.mark.parametrize("args,expect", [(["--method", "nope:1"], "unknown"), (["--method", "f1"], "needs labelled"),
                                         (["--apply", "--method", "sigma:3"], "--reason"), (["--labels", "nolabel"], "not found")],
                         ids=["unknown-method", "f1-no-labels", "apply-no-reason", "missing-label-column"])
def test_bad_flags_exit_2(bundle: Path, vibration_csvs: dict[str, Path], args: list[str], expect: str) -> None:
    code, out = run_cli("threshold", str(bundle), "--data", str(vibration_csvs["healthy"]), *args)
    assert code == 2 and expect in out and len(out.strip().splitlines()) == 1


def test_sign_then_verify_and_keys_are_never_overwritten(bundle: Path, tmp_path: Path) -> None:
    code, out = run_cli("keys", "generate", "--out", str(tmp_path / "k"))
    assert code == 0 and (tmp_path / "k.key").stat().st_mode & 0o077 == 0
    code, out = run_cli("keys", "generate", "--out", str(tmp_path / "k"))
    assert code == 2 and "already exists" in out
    assert run_cli("sign", str(bundle), "--key", str(tmp_path / "k.key"))[0] == 0
    code, out = run_cli("keys", "verify", str(bundle), "--public-key", str(tmp_path / "k.pub"))
    assert code == 0 and "signed by key" in out
    assert json.loads(Bundle.load(bundle).signature)["alg"] == "ed25519"


@pytest.mark.parametrize("argv", [["threshold", "--help"], ["threshold", "set", "--help"], ["devices", "--help"],
                                  ["keys", "--help"], ["sign", "--help"], ["deploy", "--help"]], ids=" ".join)
def test_operator_commands_import_nothing_heavy(argv: list[str]) -> None:
    code = (f"from tools.cli import cli\ntry:\n    cli.main(args={argv!r}, standalone_mode=False)\nexcept SystemExit:\n    pass\n"
            "import sys\nprint('\\n'.join(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr
    loaded = set(proc.stdout.split())
    heavy = {m for m in loaded for h in ("tensorflow", "sklearn", "matplotlib", "cryptography", "paho", "numpy")
             if m == h or m.startswith(h + ".")}
    assert not heavy
