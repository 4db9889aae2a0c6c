"""The gateway never imports TensorFlow: checked in fresh interpreters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("tensorflow", "tf_keras", "keras", "sklearn", "matplotlib")


def _modules_after(code: str) -> set[str]:
    probe = code + "\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["score", "--help"], ["info", "--help"],
                                  ["train", "--help"], ["simulate", "--help"], ["drift", "--help"],
                                  ["threshold", "--help"], ["deploy", "--help"], ["sign", "--help"]],
                         ids=lambda a: " ".join(a))
def test_cli_help_imports_nothing_heavy(argv: list[str]) -> None:
    code = f"from tools.cli import cli\ntry:\n    cli.main(args={argv!r}, standalone_mode=False)\nexcept SystemExit:\n    pass"
    loaded = _modules_after(code)
    assert not {m for m in loaded for h in HEAVY if m == h or m.startswith(h + ".")}


def test_edge_runtime_and_firmware_bridge_import_without_tensorflow() -> None:
    pkgs = sorted(p.stem for p in (REPO / "edge_runtime").glob("*.py") if p.stem != "__init__")
    code = "\n".join(f"import edge_runtime.{name}" for name in pkgs) + "\nimport firmware_bridge"
    loaded = _modules_after(code)
    assert "tensorflow" not in loaded and "tf_keras" not in loaded and "trainer" not in loaded


def test_firmware_bridge_core_is_stdlib_only() -> None:
    code = "import firmware_bridge, firmware_bridge.protocol, firmware_bridge.synthetic, firmware_bridge.simulator"
    loaded = _modules_after(code)
    assert not {"numpy", "serial", "click", "paho"} & {m.split(".")[0] for m in loaded}


def test_missing_extra_names_the_pip_command(tmp_path: Path) -> None:
    # sys.modules[name] = None makes "import name" fail as if it were not installed.
    code = (
        "import sys; sys.modules['tensorflow'] = None\n"
        "from tools.cli import main\n"
        f"main(['train', {str(tmp_path / 'x.csv')!r}, '--out', {str(tmp_path / 'b.ewb')!r}])"
    )
    (tmp_path / "x.csv").write_text("a,b\n" + "\n".join(f"{i},{i * i % 7}" for i in range(100)))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 1
    assert "pip install 'edgewatch[train]'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_score_and_info_work_with_tensorflow_uninstalled(tiny_bundle: Path, vibration_csvs: dict, tmp_path: Path) -> None:
    # Blocking the import is what a gateway without TensorFlow looks like to
    # Python: any attempt to import it (or tf_keras, or the trainer's Keras
    # path) would fail the command.
    out = tmp_path / "scores.csv"
    code = (
        "import sys\n"
        "for name in ('tensorflow', 'tf_keras', 'keras'):\n"
        "    sys.modules[name] = None\n"
        "from tools.cli import cli\n"
        f"cli.main(args=['score', '--bundle', {str(tiny_bundle)!r}, {str(vibration_csvs['bearing'])!r}, '--out', {str(out)!r}], standalone_mode=False)\n"
        f"cli.main(args=['info', {str(tiny_bundle)!r}], standalone_mode=False)\n"
        "print('trainer' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "False"
    assert "model_int8.tflite" in proc.stdout
    assert len(out.read_text().splitlines()) == len(vibration_csvs["bearing"].read_text().splitlines())
