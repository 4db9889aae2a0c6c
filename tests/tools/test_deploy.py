"""Sign and flash bundles to a local release directory under a running ``edgewatch run``; roll back a bad one."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from click.testing import CliRunner

from edge_runtime.bundle import Bundle
from edge_runtime.signing import load_private_key, sign_bundle
from tests.mqtt_broker import MosquittoBroker, PlantSubscriber, free_port
from tests.tools.conftest import start_runtime, wait_status
from tools.cli import cli


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def variant(src: Path, dst: Path, key: Path | None, *, threshold: float | None = None, break_model: bool = False) -> Path:
    b = Bundle.load(src)
    b.manifest["model"]["version"] = b.version + 1
    if threshold is not None:
        b.manifest["threshold"]["value"] = threshold
    if break_model:  # hashes and signature are right, but the model does not load: only the device can tell
        b.put(b.runtime_model, b"this is not a tflite flatbuffer" * 10)
    if key is not None:
        sign_bundle(b, load_private_key(key))
    b.save(dst)
    return dst


def test_flash_signed_bundle_refuse_unsigned_and_roll_back_a_broken_one(
        bundle: Path, broker: MosquittoBroker, plant: PlantSubscriber, simulator: str, tmp_path: Path,
        keypair: tuple[Path, Path]) -> None:
    key, pub = keypair
    target = tmp_path / "gateway"
    code, out = run_cli("sign", str(bundle), "--key", str(key))
    assert code == 0, out
    code, out = run_cli("deploy", str(bundle), "--to", str(target), "--public-key", str(pub))
    assert code == 0 and "signed by key" in out, out
    v1 = Bundle.load(bundle)
    rt = start_runtime(target / "current" / "bundle.ewb", broker, simulator, tmp_path / "state",
                       env={"EDGEWATCH_SECURITY_BUNDLE_PUBLIC_KEY": str(pub)})
    try:
        wait_status(plant, "gw-1", lambda d: d["model_sha256"] == v1.sha256)
        watch = ["--device", "gw-1", "--mqtt", broker.url, "--public-key", str(pub)]

        v2 = variant(bundle, tmp_path / "v2.ewb", key, threshold=v1.threshold * 1.05)
        code, out = run_cli("deploy", str(v2), "--to", str(target), *watch, "--timeout", "60")
        assert code == 0, out
        sha2 = Bundle.load(v2).sha256
        assert f"running    gw-1: model {v1.model_id} v{v1.version + 1} sha256 {sha2[:12]}" in out
        slot2 = os.readlink(target / "current")
        assert sha2[:12] in slot2

        unsigned = variant(v2, tmp_path / "v3.ewb", None)
        code, out = run_cli("deploy", str(unsigned), "--to", str(target), *watch)
        assert code == 2 and out.startswith("Error: ") and "unsigned" in out and len(out.strip().splitlines()) == 1
        assert os.readlink(target / "current") == slot2
        assert len(list((target / "releases").iterdir())) == 2        # the refused slot was removed

        broken = variant(v2, tmp_path / "v4.ewb", key, break_model=True)
        code, out = run_cli("deploy", str(broken), "--to", str(target), *watch, "--timeout", "8")
        assert code == 1, out
        assert "rollback" in out and "rolled back to" in out.splitlines()[-1]
        assert os.readlink(target / "current") == slot2
        rt.wait_line(lambda ln: "bundle reload failed, keeping model" in ln, timeout=30)
        # Still running the good model: a ping answered with its sha.
        code, out = run_cli("threshold", "set", "--device", "gw-1", "--mqtt", broker.url, "--reset")
        assert code == 0 and "v2" in out, out
        assert rt.proc.poll() is None
    finally:
        rt.stop()


def test_tampered_bundle_is_refused_by_verify_and_by_the_runtime(
        bundle: Path, broker: MosquittoBroker, simulator: str, tmp_path: Path, keypair: tuple[Path, Path]) -> None:
    key, pub = keypair
    assert run_cli("sign", str(bundle), "--key", str(key))[0] == 0
    code, out = run_cli("keys", "verify", str(bundle), "--public-key", str(pub))
    assert code == 0 and "signed by key" in out
    # Edit the manifest inside the zip without re-signing (a threshold silently raised).
    b = Bundle.load(bundle)
    assert b.raw_manifest is not None and b.signature is not None
    raw = b.raw_manifest.replace(b'"value": ', b'"value": 9', 1)
    bad = tmp_path / "tampered.ewb"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("manifest.json", raw)
        zf.writestr("manifest.sig", b.signature)
        for n in b.member_names():
            zf.writestr(n, b.read(n))
    code, out = run_cli("keys", "verify", str(bad), "--public-key", str(pub))
    assert code == 2 and "does not match" in out and len(out.strip().splitlines()) == 1
    with PlantSubscriber(broker, "edgewatch/#"):
        rt = start_runtime(bad, broker, simulator, tmp_path / "state",
                           env={"EDGEWATCH_SECURITY_BUNDLE_PUBLIC_KEY": str(pub)})
        code = rt.proc.wait(timeout=60)
        rt.stop()
    assert code == 2
    assert any(ln.startswith("Error: ") and "signature does not match" in ln for ln in rt.lines)


def test_unreachable_ssh_target_is_one_error_line_and_exit_1(bundle: Path) -> None:
    code, out = run_cli("deploy", str(bundle), "--to", f"ssh://nobody@127.0.0.1:{free_port()}/opt/edgewatch/models")
    assert code == 1 and out.startswith("Error: cannot reach nobody@127.0.0.1") and len(out.strip().splitlines()) == 1


def test_bad_deploy_flags_exit_2(bundle: Path, tmp_path: Path) -> None:
    code, out = run_cli("deploy", str(bundle), "--to", "ftp://host/x")
    assert code == 2 and "unknown scheme" in out
    code, out = run_cli("deploy", str(bundle), "--to", str(tmp_path / "t"), "--device", "gw-1")
    assert code == 2 and "--device and --mqtt go together" in out
    code, out = run_cli("deploy", str(tmp_path / "missing.ewb"), "--to", str(tmp_path / "t"))
    assert code == 2 and "no such bundle file" in out


def test_reload_that_nobody_acknowledges_rolls_current_back(bundle: Path, broker: MosquittoBroker, tmp_path: Path) -> None:
    target = tmp_path / "gateway"
    code, out = run_cli("deploy", str(bundle), "--to", str(target))
    assert code == 0, out
    first = os.readlink(target / "current")
    v2 = variant(bundle, tmp_path / "v2.ewb", None)
    # No runtime listens for gw-ghost: the reload command is never acknowledged.
    code, out = run_cli("deploy", str(v2), "--to", str(target), "--device", "gw-ghost", "--mqtt", broker.url, "--timeout", "2")
    assert code == 1, out
    assert "rollback   reload failed" in out
    assert os.readlink(target / "current") == first
