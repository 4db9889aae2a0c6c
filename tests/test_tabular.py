"""Tabular records: window 1, categorical columns one-hot encoded with the bundle's vocabulary.

Seeded network-flow-like records (numeric bytes/duration/packets, categorical
proto/service), a real window-1 dense bundle with an int8 TFLite model, no mocks.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edge_runtime.bundle import Bundle
from edge_runtime.categorical import OneHotEncoder, load_bundle_table
from edge_runtime.data import load_table
from edge_runtime.errors import DataError
from edge_runtime.preprocess import Indicator, Standardizer
from edge_runtime.scorer import BundleScorer
from tools.cli import cli

# Normal traffic: the service fixes the protocol and the size of a flow.
#            proto  service  share  packets  bytes/packet  seconds
_NORMAL = [("tcp", "http", 0.40, 20.0, 800.0, 0.5),
           ("tcp", "ssh", 0.20, 60.0, 120.0, 30.0),
           ("udp", "dns", 0.30, 2.0, 80.0, 0.02),
           ("udp", "ntp", 0.10, 2.0, 90.0, 0.05)]
_KIND = {s: (p, n, b, d) for p, s, _, n, b, d in _NORMAL}


def _flow(rng: np.random.Generator, service: str, proto: str | None = None,
          packets: float | None = None, bytes_per_packet: float | None = None) -> list[object]:
    p, n, b, d = _KIND[service]
    pk = max(1, round((packets or n) * rng.lognormal(0, 0.15)))
    by = pk * (bytes_per_packet or b) * rng.lognormal(0, 0.1)
    return [round(by, 1), round(d * rng.lognormal(0, 0.2), 4), pk, proto or p, service]


def flows(n_normal: int, n_anomalous: int, seed: int) -> list[list[object]]:
    """Rows [bytes, duration, packets, proto, service, label], shuffled."""
    rng = np.random.default_rng(seed)
    services = [s for _, s, *_ in _NORMAL]
    share = [w for _, _, w, *_ in _NORMAL]
    rows = [_flow(rng, str(s)) + [0] for s in rng.choice(services, size=n_normal, p=share)]
    for i in range(n_anomalous):
        kind = i % 3
        if kind == 0:    # protocol the service never uses
            service = str(rng.choice(services))
            row = _flow(rng, service, proto="udp" if _KIND[service][0] == "tcp" else "tcp")
        elif kind == 1:  # exfiltration: an http flow with 30x the bytes per packet
            row = _flow(rng, "http", bytes_per_packet=24000.0)
        else:            # flood: a dns flow with hundreds of packets
            row = _flow(rng, "dns", packets=400.0)
        rows.append(row + [1])
    order = rng.permutation(len(rows))
    return [rows[i] for i in order]


def write_flows(path: Path, rows: list[list[object]], header: tuple[str, ...] = ("bytes", "duration", "packets",
                                                                                 "proto", "service", "label")) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def run_cli(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def read_scores(path: Path) -> np.ndarray:
    with path.open(newline="") as fh:
        return np.array([float(r["score"]) for r in csv.DictReader(fh)])


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("records")
    return {"train": write_flows(d / "train.csv", flows(2000, 0, seed=1)),
            "test": write_flows(d / "test.csv", flows(600, 150, seed=2))}


@pytest.fixture(scope="module")
def flow_bundle(tmp_path_factory: pytest.TempPathFactory, records: dict[str, Path]) -> Path:
    out = tmp_path_factory.mktemp("flow") / "flows.ewb"
    code, stdout, stderr = run_cli("train", records["train"], "--categorical", "proto,service", "--window", 1,
                                   "--model", "dense", "--epochs", 40, "--patience", 5, "--batch-size", 32,
                                   "--threshold-method", "percentile:99", "--check", records["test"],
                                   "--check-labels", "label", "--out", out)
    assert code == 0, stdout + stderr
    return out


# ------------------------------------------------------------------ encoder
def test_encoder_sorts_vocabulary_and_counts_unseen_values() -> None:
    enc = OneHotEncoder.fit({"proto": ["udp", "tcp", "udp"], "service": ["dns", "http", "dns"]})
    assert enc.vocabulary == {"proto": ("tcp", "udp"), "service": ("dns", "http")}
    assert enc.channels == ("proto=tcp", "proto=udp", "service=dns", "service=http")
    onehot, unseen = enc.transform({"proto": ["tcp", "icmp", "icmp", "gre"], "service": ["http", "dns", "dns", "dns"]})
    assert onehot.tolist() == [[1, 0, 0, 1], [0, 0, 1, 0], [0, 0, 1, 0], [0, 0, 1, 0]]
    assert len(unseen) == 1 and (unseen[0].column, unseen[0].rows, unseen[0].values) == ("proto", 3, ("icmp", "gre"))
    assert "2 unseen categories in column 'proto' in 3 rows (values: 'icmp', 'gre')" in unseen[0].message()
    assert OneHotEncoder.from_manifest(enc.to_manifest()) == enc


def test_indicator_channels_are_not_standardised() -> None:
    x = np.array([[1.0, 0.0, 1.0], [3.0, 0.0, 0.0], [5.0, 0.0, 1.0]])  # an indicator all zeros in this split is fine
    s = Standardizer.fit(x, ("bytes", Indicator("proto=icmp"), Indicator("proto=tcp")))
    assert s.mean.tolist() == [3.0, 0.0, 0.0] and s.scale[1:].tolist() == [1.0, 1.0]
    assert s.transform(x)[:, 1:].tolist() == x[:, 1:].tolist()


# ------------------------------------------------------------------ bundle
def test_bundle_stores_vocabulary_and_one_hot_channels(flow_bundle: Path) -> None:
    b = Bundle.load(flow_bundle)
    assert b.window == 1 and b.manifest["model"]["type"] == "dense" and b.runtime_model == "model_int8.tflite"
    assert b.manifest["categorical"] == {"columns": ["proto", "service"],
                                         "vocabulary": {"proto": ["tcp", "udp"], "service": ["dns", "http", "ntp", "ssh"]}}
    assert b.channel_names == ["bytes", "duration", "packets", "proto=tcp", "proto=udp",
                               "service=dns", "service=http", "service=ntp", "service=ssh"]
    assert b.manifest["scaler"]["mean"][3:] == [0.0] * 6 and b.manifest["scaler"]["scale"][3:] == [1.0] * 6
    code, stdout, _ = run_cli("info", flow_bundle)
    assert code == 0 and "categorical proto (2 values), service (4 values), one-hot encoded" in stdout


def test_window_one_dense_bundle_separates_anomalous_records(flow_bundle: Path, records: dict[str, Path]) -> None:
    from trainer.export import roc_auc

    b = Bundle.load(flow_bundle)
    table, unseen = load_bundle_table(b, [str(records["test"])], label_column="label")
    assert unseen == []
    res = BundleScorer(b).score_rows(table.values, table.segments)
    assert len(res.scores) == len(table) and res.end_rows.tolist() == list(range(len(table)))
    labels = table.labels[res.end_rows]
    assert roc_auc(res.scores, labels) > 0.9
    alarms = res.scores > b.threshold
    assert alarms[labels == 1].mean() > 0.6 and alarms[labels == 0].mean() < 0.05
    # Protocol swaps have normal volumes: only the one-hot columns give them away.
    raw = load_table(records["test"], columns=("bytes",), categorical=("proto", "service")).categories
    swapped = np.array([_KIND[s][0] != p for p, s in zip(raw["proto"], raw["service"])])
    assert swapped.sum() == 50 and alarms[swapped].mean() > 0.8


def test_host_score_equals_bundle_scorer_on_the_same_rows(flow_bundle: Path, records: dict[str, Path],
                                                          tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    code, stdout, stderr = run_cli("score", "--bundle", flow_bundle, records["test"], "--out", out)
    assert code == 0 and stderr == "", stdout + stderr
    # Encode independently of edge_runtime.categorical: the manifest's vocabulary, by hand.
    b = Bundle.load(flow_bundle)
    raw = load_table(records["test"], columns=("bytes", "duration", "packets"), categorical=("proto", "service"))
    vocab = b.manifest["categorical"]["vocabulary"]
    onehot = [(raw.categories[c] == v).astype(float) for c in ("proto", "service") for v in vocab[c]]
    values = np.column_stack([raw.values, *onehot])
    direct = BundleScorer(b).score_rows(values, raw.segments).scores
    assert np.array_equal(read_scores(out), direct)


def test_unseen_category_is_counted_reported_and_still_scored(flow_bundle: Path, tmp_path: Path) -> None:
    rows = flows(40, 0, seed=3)
    for i in (2, 5, 9):
        rows[i][3] = "icmp"
    rows[7][4] = "ping"
    data = write_flows(tmp_path / "new.csv", rows)
    out = tmp_path / "scores.csv"
    code, stdout, stderr = run_cli("score", "--bundle", flow_bundle, data, "--out", out)
    assert code == 0, stdout + stderr
    warnings = stderr.strip().splitlines()
    assert warnings == [
        "warning: 1 unseen category in column 'proto' in 3 rows (values: 'icmp'); those rows were scored with no proto category set",
        "warning: 1 unseen category in column 'service' in 1 row (values: 'ping'); those rows were scored with no service category set",
    ]
    scores = read_scores(out)
    assert len(scores) == 40 and np.isfinite(scores).all()
    table, unseen = load_bundle_table(Bundle.load(flow_bundle), [str(data)])
    assert [(u.column, u.rows) for u in unseen] == [("proto", 3), ("service", 1)]
    assert table.values[[2, 5, 9]][:, 3:5].sum() == 0  # no proto indicator set on the unseen rows
    code, stdout, stderr = run_cli("drift", flow_bundle, data)
    assert code == 0 and "unseen category in column 'proto' in 3 rows" in stderr and "verdict" in stdout


def test_evaluate_and_export_read_categorical_data(flow_bundle: Path, records: dict[str, Path], tmp_path: Path) -> None:
    code, stdout, stderr = run_cli("evaluate", "--bundle", flow_bundle, records["test"], "--labels", "label",
                                   "--report", tmp_path / "report")
    assert code == 0, stdout + stderr
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["results"]["autoencoder"]["roc_auc"] > 0.9 and "unseen_categories" not in metrics
    out = tmp_path / "f16.ewb"
    code, stdout, stderr = run_cli("export", flow_bundle, "--quantize", "float16", "--check", records["test"],
                                   "--check-labels", "label", "--out", out)
    assert code == 0, stdout + stderr
    b = Bundle.load(out)
    assert b.manifest["categorical"] == Bundle.load(flow_bundle).manifest["categorical"]
    assert b.manifest["parity"]["model_float16.tflite"]["roc_auc_quantized"] > 0.9


# ------------------------------------------------------------------ bad input
_NUMERIC = [[float(i % 7 + 1), 0.1 * (i % 5 + 1), i % 3 + 1] for i in range(60)]
BAD = {
    "single-value categorical": (
        [r + ["tcp", ("http", "dns")[i % 2]] for i, r in enumerate(_NUMERIC)], ["--categorical", "proto,service"],
        "categorical column 'proto' has the single value 'tcp' in the training rows; it carries no information: "
        "leave it out of --categorical"),
    "all-NaN numeric column": (
        [[r[0], "nan", r[2], ("tcp", "udp")[i % 2], "dns"] for i, r in enumerate(_NUMERIC)], ["--categorical", "proto"],
        "column 'duration' is empty or NaN in all 60 rows; leave it out of --columns or fill it in"),
    "all-empty numeric column": (
        [[r[0], "", r[2], ("tcp", "udp")[i % 2], "dns"] for i, r in enumerate(_NUMERIC)], ["--categorical", "proto"],
        "column 'duration' is empty or NaN in all 60 rows"),
    "missing categorical column": (
        [r + [("tcp", "udp")[i % 2], "dns"] for i, r in enumerate(_NUMERIC)], ["--categorical", "proto,protocol"],
        "column 'protocol' (from --categorical) not found; the header has: bytes, duration, packets, proto, service"),
    "text column not declared categorical": (
        [r + [("tcp", "udp")[i % 2], "dns"] for i, r in enumerate(_NUMERIC)], ["--categorical", "proto"],
        "column 'service' row 2 has 'dns', which is not a number; fix the cell or leave the column out of "
        "--columns (it holds text in every row: if these are categories, pass --categorical service)"),
    "empty categorical cell": (
        [r + [("tcp", "udp", "")[i % 3], "dns"] for i, r in enumerate(_NUMERIC)], ["--categorical", "proto,service"],
        "categorical column 'proto' row 4 is empty; give every row a category"),
    "window 1 with conv": (
        [r + [("tcp", "udp")[i % 2], "dns"] for i, r in enumerate(_NUMERIC)], ["--model", "conv", "--categorical", "proto"],
        "1 (one record at a time) needs --model dense"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_tabular_input_is_one_line_exit_2(case: str, tmp_path: Path) -> None:
    rows, extra, expected = BAD[case]
    data = write_flows(tmp_path / "records.csv", rows, ("bytes", "duration", "packets", "proto", "service"))
    out = tmp_path / "b.ewb"
    code, stdout, stderr = run_cli("train", data, "--window", 1, "--model", "dense", "--epochs", 1, "--out", out, *extra)
    errors = [line for line in (stdout + stderr).splitlines() if line.startswith("Error:")]
    assert code == 2 and len(errors) == 1 and expected in errors[0], stdout + stderr
    assert "Traceback" not in stdout + stderr and not out.exists()


def test_categorical_needs_a_csv(cmapss_path: Path) -> None:
    with pytest.raises(DataError, match="--categorical applies to CSV files only"):
        load_table(cmapss_path, categorical=("os1",))


def test_threshold_tuning_reads_categorical_data(flow_bundle: Path, records: dict[str, Path]) -> None:
    code, stdout, stderr = run_cli("threshold", flow_bundle, "--data", records["test"], "--labels", "label",
                                   "--sample-rate", 1, "--method", "f1")
    assert code == 0, stdout + stderr
    assert "RECALL" in stdout and any(line.startswith("f1") for line in stdout.splitlines())
