"""Train, export, score, evaluate and info on real data with real TFLite models."""

from __future__ import annotations

import csv
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edge_runtime.bundle import Bundle
from edge_runtime.data import load_table
from edge_runtime.errors import BundleError
from edge_runtime.scorer import BundleScorer
from tools.cli import cli

REPO = Path(__file__).resolve().parent.parent


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def stderr_of(output: str) -> str:
    """The one 'Error: ...' line (progress lines may precede it on stdout)."""
    lines = [line for line in output.strip().splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in output, output
    return lines[0]


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_score_writes_one_row_per_input_row(tiny_bundle: Path, vibration_csvs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    code, output = run_cli("score", "--bundle", tiny_bundle, vibration_csvs["bearing"], "--out", out)
    assert code == 0, output
    rows = read_rows(out)
    table = load_table(vibration_csvs["bearing"])
    assert len(rows) == len(table)
    bundle = Bundle.load(tiny_bundle)
    assert all(r["score"] == "" for r in rows[: bundle.window - 1])
    scored = [r for r in rows if r["score"] != ""]
    assert len(scored) == len(table) - bundle.window + 1
    assert all(int(r["is_anomaly"]) == (float(r["score"]) > bundle.threshold) for r in scored)
    assert [r["time"] for r in rows[:3]] == list(table.time[:3])


def test_score_matches_the_gateway_scorer(tiny_bundle: Path, vibration_csvs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    assert run_cli("score", "--bundle", tiny_bundle, vibration_csvs["healthy"], "--out", out)[0] == 0
    cli_scores = np.array([float(r["score"]) for r in read_rows(out) if r["score"]])
    table = load_table(vibration_csvs["healthy"])
    direct = BundleScorer(Bundle.load(tiny_bundle)).score_rows(table.values).scores
    assert np.array_equal(cli_scores, direct)


def test_fault_scores_higher_than_healthy(tiny_bundle: Path, tmp_path: Path) -> None:
    from firmware_bridge.synthetic import generate, write_csv
    from trainer.api import DataSpec, train_bundle

    data = tmp_path / "machine.csv"
    write_csv(generate(24, 1000.0, fault="imbalance", fault_start=0.5, seed=5), data)
    bundle_path = tmp_path / "m.ewb"
    train_bundle(DataSpec((str(data),), label_column="label"), bundle_path, window=32, stride=4, epochs=8,
                 patience=3, verbose=0, log=lambda _: None)
    table = load_table(data, label_column="label")
    res = BundleScorer(Bundle.load(bundle_path)).score_rows(table.values)
    lab = table.labels[res.end_rows]
    assert np.median(res.scores[lab == 1]) > 2 * np.median(res.scores[lab == 0])


def test_info_shows_ops_parity_and_edgetpu(tiny_bundle: Path) -> None:
    code, output = run_cli("info", tiny_bundle)
    assert code == 0
    assert "RESIZE_NEAREST_NEIGHBOR" in output and "TRANSPOSE_CONV" not in output
    assert "maps entirely onto the Edge TPU" in output
    assert "parity     model_int8.tflite vs model_float32.tflite: passed" in output


def test_int8_model_reads_its_quantization_from_the_model(tiny_bundle: Path) -> None:
    b = Bundle.load(tiny_bundle)
    details = b.manifest["models"]["model_int8.tflite"]
    scorer = BundleScorer(b)
    assert details["input"]["dtype"] == "int8"
    assert scorer.model.input_quant == (pytest.approx(details["input"]["scale"]), details["input"]["zero_point"])
    assert b.manifest["parity"]["model_int8.tflite"]["decision_agreement"] >= 0.99


@pytest.mark.parametrize("kind,fused_op", [("lstm", "UNIDIRECTIONAL_SEQUENCE_LSTM"), ("dense", "FULLY_CONNECTED")])
def test_lstm_and_dense_export_to_fused_int8_ops(kind: str, fused_op: str, vibration_csvs: dict[str, Path], tmp_path: Path) -> None:
    from trainer.api import DataSpec, train_bundle

    out = tmp_path / f"{kind}.ewb"
    train_bundle(DataSpec((str(vibration_csvs["healthy"]),)), out, model=kind, window=16, stride=8, epochs=2,
                 patience=1, verbose=0, log=lambda _: None)
    ops = Bundle.load(out).manifest["models"]["model_int8.tflite"]["ops"]
    assert fused_op in ops
    assert not [op for op in ops if op.startswith(("WHILE", "FLEX", "CUSTOM"))]


def test_export_cli_reexports_float16_and_keeps_reference(tiny_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "f16.ewb"
    code, output = run_cli("export", tiny_bundle, "--quantize", "float16", "--out", out)
    assert code == 0, output
    b = Bundle.load(out)
    assert b.runtime_model == "model_float16.tflite"
    assert {"model_float32.tflite", "model_int8.tflite", "model_float16.tflite"} <= set(b.member_names())
    assert b.manifest["parity"]["model_float16.tflite"]["spearman"] > 0.99


def test_evaluate_writes_report_with_baselines(tiny_bundle: Path, vibration_csvs: dict[str, Path], tmp_path: Path) -> None:
    report = tmp_path / "report"
    code, output = run_cli("evaluate", "--bundle", tiny_bundle, vibration_csvs["bearing"], "--labels", "label", "--report", report)
    assert code == 0, output
    text = (report / "report.md").read_text()
    for name in ("autoencoder", "IsolationForest", "PCA"):
        assert f"| {name} |" in text
    for png in ("score_timeline.png", "score_histogram.png", "roc_pr.png"):
        assert (report / png).read_bytes()[:4] == b"\x89PNG"


def test_cmapss_windows_never_cross_engines(cmapss_path: Path) -> None:
    from edge_runtime.windows import sliding_windows

    table = load_table(cmapss_path, format="cmapss", units="1-3")
    _, ends = sliding_windows(table.values, 30, 1, table.segments)
    unit = table.extra["unit"]
    assert (unit[ends - 29] == unit[ends]).all()
    assert len(ends) == sum(int((unit == u).sum()) - 29 for u in (1, 2, 3))


# ------------------------------------------------------------------ bad input
def _csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


BAD_DATA = {
    "unknown column": ("a,b\n" + "1,2\n" * 50, ["--columns", "a,zz"], "column 'zz'"),
    "non-numeric cell": ("a,b\n" + "1,2\n" * 10 + "1,oops\n" + "1,3\n" * 40, [], "row 12 has 'oops'"),
    "nan": ("a,b\n" + "1,2\n" * 10 + "1,nan\n" + "2,3\n" * 40, [], "column 'b' row 12"),
    "inf": ("a,b\n" + "1,2\n" * 10 + "inf,1\n" + "2,3\n" * 40, [], "column 'a' row 12"),
    "constant channel": ("a,b\n" + "".join(f"{i % 5},7\n" for i in range(200)), [], "column 'b' is constant"),
    "too few rows": ("a,b\n" + "1,2\n2,3\n", [], "fewer than one window"),
    "empty file": ("", [], "the file is empty"),
    "header only": ("a,b\n", [], "no data rows"),
}


@pytest.mark.parametrize("case", list(BAD_DATA), ids=list(BAD_DATA))
def test_train_rejects_bad_data_with_one_line_and_exit_2(case: str, tmp_path: Path) -> None:
    text, extra, expected = BAD_DATA[case]
    data = _csv(tmp_path / "data.csv", text)
    out = tmp_path / "b.ewb"
    code, output = run_cli("train", data, "--window", "8", "--epochs", "1", "--out", out, *extra)
    assert code == 2, output
    error = stderr_of(output)
    assert expected in error and "data.csv" in error
    assert error.count("\n") == 0 and error.startswith("Error:")
    assert not out.exists() and not list(tmp_path.glob(".b.ewb*"))


def test_cli_error_has_no_traceback_in_a_real_process(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "tools.cli", "score", "--bundle", str(tmp_path / "nope.ewb"),
                           str(tmp_path / "x.csv"), "--out", str(tmp_path / "o.csv")],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"Error: {tmp_path / 'nope.ewb'}: no such bundle file; pass the path of a .ewb file written by 'edgewatch train'"


def _rewrite(src: Path, dst: Path, change: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, change.get(name, zin.read(name)))
    return dst


def test_bundle_verification_refuses_tampering_and_newer_schemas(tiny_bundle: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(tiny_bundle) as z:
        model = z.read("model_int8.tflite")
        manifest = z.read("manifest.json")
    tampered = _rewrite(tiny_bundle, tmp_path / "t.ewb", {"model_int8.tflite": model[:-1] + bytes([model[-1] ^ 1])})
    with pytest.raises(BundleError, match="'model_int8.tflite' sha256 does not match"):
        Bundle.load(tampered)
    newer = _rewrite(tiny_bundle, tmp_path / "n.ewb", {"manifest.json": manifest.replace(b'"schema_version": 1', b'"schema_version": 99')})
    with pytest.raises(BundleError, match="schema_version 99 is newer"):
        Bundle.load(newer)
    not_zip = _csv(tmp_path / "x.ewb", "hello")
    code, output = run_cli("info", not_zip)
    assert code == 2 and "not an edgewatch bundle" in output


def test_truncated_tflite_is_refused_with_the_member_named(tiny_bundle: Path, vibration_csvs: dict[str, Path], tmp_path: Path) -> None:
    b = Bundle.load(tiny_bundle)
    b.put("model_int8.tflite", b.read("model_int8.tflite")[:200])
    b.save(tmp_path / "trunc.ewb")  # hashes match: the damage is inside the model itself
    out = tmp_path / "s.csv"
    code, output = run_cli("score", "--bundle", tmp_path / "trunc.ewb", vibration_csvs["healthy"], "--out", out)
    assert code == 2 and "model_int8.tflite" in output and not out.exists()


def test_model_shape_disagreeing_with_manifest_is_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    b = Bundle.load(tiny_bundle)
    b.manifest["window"] = 16
    b.save(tmp_path / "w.ewb")
    with pytest.raises(BundleError, match=r"expects input of shape \(32, 4\).*window=16"):
        BundleScorer(Bundle.load(tmp_path / "w.ewb"))


def test_edgetpu_member_that_cannot_run_here_falls_back_to_the_int8_model(tiny_bundle: Path, vibration_csvs: dict[str, Path], tmp_path: Path) -> None:
    # Without the Edge TPU runtime, a compiled model (one big custom op) cannot
    # be loaded; the scorer must say so and run the CPU int8 model it came from.
    b = Bundle.load(tiny_bundle)
    b.put("model_int8_edgetpu.tflite", b.read("model_int8.tflite")[:300])
    path = b.save(tmp_path / "tpu.ewb")
    scorer = BundleScorer(Bundle.load(path))
    assert scorer.member == "model_int8.tflite"
    assert scorer.model.fallback and "model_int8_edgetpu.tflite" in scorer.model.fallback
    table = load_table(vibration_csvs["healthy"])
    expected = BundleScorer(Bundle.load(tiny_bundle)).score_rows(table.values).scores
    assert np.array_equal(scorer.score_rows(table.values).scores, expected)
    b.manifest["runtime"]["model"] = "model_float32.tflite"  # after a float re-export the TPU model is stale
    stale = BundleScorer(Bundle.load(b.save(tmp_path / "stale.ewb")))
    assert stale.member == "model_float32.tflite" and stale.model.fallback is None


def test_check_data_is_read_in_the_training_column_order(vibration_csvs: dict[str, Path], tmp_path: Path) -> None:
    from trainer.api import DataSpec, train_bundle

    rows = vibration_csvs["bearing"].read_text().splitlines()
    header = rows[0].split(",")
    order = [header.index(c) for c in ("label", "current", "vib_z", "vib_y", "vib_x", "time")]
    shuffled = tmp_path / "shuffled.csv"
    shuffled.write_text("\n".join(",".join(r.split(",")[i] for i in order) for r in rows) + "\n")
    figures = []
    for check in (vibration_csvs["bearing"], shuffled):
        out = tmp_path / f"{check.stem}.ewb"
        train_bundle(DataSpec((str(vibration_csvs["healthy"]),)), out, window=16, stride=8, epochs=2, patience=1,
                     verbose=0, log=lambda _: None, check=DataSpec((str(check),), label_column="label"))
        figures.append(Bundle.load(out).manifest["parity"]["model_int8.tflite"]["roc_auc_reference"])
    assert figures[0] == figures[1] and figures[0] > 0.9


@pytest.mark.parametrize("edit,field", [
    (lambda m: m["threshold"].pop("value"), "threshold.value"),
    (lambda m: m["threshold"].update(value="high"), "threshold.value"),
    (lambda m: m.update(channels=["vib_x", "vib_y"]), "channels"),
    (lambda m: m["runtime"].update(model=["a"]), "runtime.model"),
    (lambda m: m["members"].update({"model_int8.tflite": "abc"}), "members"),
], ids=["no-threshold", "threshold-text", "channels-strings", "runtime-list", "member-entry"])
def test_hand_edited_manifests_are_refused_in_one_line(tiny_bundle: Path, tmp_path: Path, edit, field: str) -> None:
    import json

    with zipfile.ZipFile(tiny_bundle) as z:
        manifest = json.loads(z.read("manifest.json"))
    edit(manifest)
    path = _rewrite(tiny_bundle, tmp_path / "edited.ewb", {"manifest.json": json.dumps(manifest).encode()})
    code, output = run_cli("info", path)
    assert code == 2, output
    assert field in stderr_of(output)


def test_csv_row_numbers_are_file_lines_and_t_is_not_a_time_column(tmp_path: Path) -> None:
    blank = _csv(tmp_path / "blank.csv", "a,b\n1,2\n\n3,4\n")
    with pytest.raises(Exception, match=r"row 3 is blank"):
        load_table(blank)
    temperature = load_table(_csv(tmp_path / "t.csv", "T,pressure\n1,2\n2,3\n3,1\n"))
    assert temperature.columns == ("T", "pressure") and temperature.sample_rate_hz is None


def test_score_refuses_data_shorter_than_a_window_and_unwritable_output(tiny_bundle: Path, vibration_csvs: dict[str, Path],
                                                                       tmp_path: Path) -> None:
    short = _csv(tmp_path / "short.csv", "vib_x,vib_y,vib_z,current\n" + "0.1,0.2,0.3,4.0\n" * 5)
    code, output = run_cli("score", "--bundle", tiny_bundle, short, "--out", tmp_path / "s.csv")
    assert code == 2 and "no complete window of 32" in stderr_of(output) and not (tmp_path / "s.csv").exists()
    code, output = run_cli("score", "--bundle", tiny_bundle, vibration_csvs["healthy"], "--out", "/proc/edgewatch/s.csv")
    assert code == 2 and "cannot write --out '/proc/edgewatch/s.csv'" in stderr_of(output)


def test_lstm_window_scores_do_not_depend_on_the_window_scored_before(vibration_csvs: dict[str, Path], tmp_path: Path) -> None:
    # Fused LSTM ops keep state in variable tensors between invokes; each
    # window must start from zero state, as in Keras.
    from trainer.api import DataSpec, train_bundle

    out = tmp_path / "lstm.ewb"
    train_bundle(DataSpec((str(vibration_csvs["healthy"]),)), out, model="lstm", window=16, stride=8, epochs=2,
                 patience=1, verbose=0, log=lambda _: None)
    scorer = BundleScorer(Bundle.load(out))
    values = load_table(vibration_csvs["bearing"]).values
    target = values[100:116][None]
    alone = scorer.score_windows(target)[0]
    after_fault = scorer.score_windows(np.concatenate([values[-16:][None], target]))[0][1]
    after_healthy = scorer.score_windows(np.concatenate([values[:16][None], target]))[0][1]
    assert alone[0] == after_fault == after_healthy
