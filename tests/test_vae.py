"""Variational autoencoders, latent and combined scores, training options: real int8 TFLite, no mocks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edge_runtime.bundle import Bundle
from edge_runtime.data import load_table
from edge_runtime.errors import ConfigError
from edge_runtime.scorer import BundleScorer
from edge_runtime.scoring import (ScoreConfig, anomaly_scores, ema, fit_latent_calibration, kl_divergence,
                                  mahalanobis, window_scores)
from tools.cli import cli
from trainer.training import TrainingOptions, beta_at


def run_cli(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def conv_vae_bundle(tmp_path_factory: pytest.TempPathFactory, vibration_csvs: dict[str, Path]) -> Path:
    out = tmp_path_factory.mktemp("vae") / "vae.ewb"
    code, output = run_cli("train", vibration_csvs["healthy"], "--labels", "label", "--model", "conv-vae",
                           "--window", 32, "--stride", 4, "--epochs", 5, "--patience", 3,
                           "--latent-score", "mahalanobis", "--latent-weight", 0.5, "--anneal", "cyclical",
                           "--free-bits", 0.05, "--out", out)
    assert code == 0, output
    return out


# ------------------------------------------------------------- numpy scores
def test_kl_and_mahalanobis_by_hand() -> None:
    stats = np.array([[0.0, 0.0, 0.0, 0.0], [1.0, 0.0, np.log(4.0), 0.0]])  # [mean(2), log_var(2)]
    # KL of N(0, 1) is 0; of N(1, 4) in one dim: 0.5 * (4 + 1 - 1 - ln 4)
    assert kl_divergence(stats) == pytest.approx([0.0, 0.5 * (4.0 - np.log(4.0))])
    precision = np.diag([1.0, 0.25])
    assert mahalanobis(np.array([[3.0, 4.0]]), np.zeros(2), precision) == pytest.approx([np.sqrt(9 + 4)])


def test_combined_score_is_standardised_on_validation() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8, 2))
    x_hat = x + rng.normal(scale=0.3, size=x.shape)
    stats = np.concatenate([rng.normal(size=(200, 3)), rng.normal(-1, 0.1, size=(200, 3))], axis=1)
    config = fit_latent_calibration(ScoreConfig(latent="kl", latent_weight=2.0), stats,
                                    window_scores(x, x_hat), stats)
    s = anomaly_scores(x, x_hat, stats, config)
    assert s.mean() == pytest.approx(0.0, abs=1e-9)  # both z parts have mean 0 on the validation set
    z_rec = (window_scores(x, x_hat) - config.recon_center) / config.recon_scale
    z_lat = (kl_divergence(stats) - config.latent_center) / config.latent_scale
    assert np.allclose(s, z_rec + 2.0 * z_lat)
    assert ScoreConfig.from_manifest(config.to_manifest()) == config
    with pytest.raises(ConfigError, match="needs a model with a latent output"):
        anomaly_scores(x, x_hat, None, config)


def test_old_manifests_load_unchanged_and_bad_lambda_is_refused() -> None:
    old = {"method": "mae", "reduce": "max", "channel_weights": None, "smooth": 3}
    config = ScoreConfig.from_manifest(old)
    assert config.latent == "none" and config.to_manifest() == old
    with pytest.raises(ConfigError, match="lambda"):
        ScoreConfig(latent="kl", latent_weight=-1.0)
    assert ema(np.array([0.0, 1.0, 1.0]), 0.5) == pytest.approx([0.0, 0.5, 0.75])


def test_beta_schedules_and_option_validation() -> None:
    linear = TrainingOptions(beta=2.0, anneal="linear", anneal_epochs=4)
    assert [beta_at(linear, 0, e) for e in (0, 2, 4, 9)] == [0.0, 1.0, 2.0, 2.0]
    cyc = TrainingOptions(beta=1.0, anneal="cyclical", cycles=2)
    # each cycle rises over its first half, then holds
    assert [beta_at(cyc, p, 0) for p in (0.0, 0.125, 0.25, 0.4, 0.5, 0.625)] == [0.0, 0.5, 1.0, 1.0, 0.0, 0.5]
    assert beta_at(TrainingOptions(anneal="none", beta=0.3), 0.0, 0.0) == 0.3
    for bad in ({"beta": -1.0}, {"free_bits": -0.1}, {"mask_prob": 1.0}, {"anneal": "cosine"}, {"noise_std": float("nan")}):
        with pytest.raises(ConfigError):
            TrainingOptions(**bad)  # type: ignore[arg-type]


# --------------------------------------------------------- trained models
def test_conv_vae_exports_int8_with_latent_output_and_passes_parity(conv_vae_bundle: Path) -> None:
    b = Bundle.load(conv_vae_bundle)
    details = b.manifest["models"]["model_int8.tflite"]
    assert details["input"]["dtype"] == "int8" and details["latent"]["width"] == 2 * 4
    assert b.manifest["parity"]["model_int8.tflite"]["passed"]
    assert b.manifest["score"]["latent"] == "mahalanobis" and len(b.manifest["score"]["latent_precision"]) == 4
    assert b.manifest["model"]["training"]["anneal"] == "cyclical"
    scorer = BundleScorer(b)
    assert scorer.model.has_latent and scorer.config.calibrated


def test_conv_vae_scores_identically_on_host_cli_and_gateway_scorer(conv_vae_bundle: Path, vibration_csvs: dict[str, Path],
                                                                    tmp_path: Path) -> None:
    out = tmp_path / "s.csv"
    code, output = run_cli("score", "--bundle", conv_vae_bundle, vibration_csvs["bearing"], "--out", out)
    assert code == 0, output
    import csv

    with out.open(newline="") as fh:
        cli_scores = np.array([float(r["score"]) for r in csv.DictReader(fh) if r["score"]])
    table = load_table(vibration_csvs["bearing"], label_column="label")
    scorer = BundleScorer(Bundle.load(conv_vae_bundle))
    rows = scorer.score_rows(table.values)
    assert np.array_equal(cli_scores, rows.scores)
    # the gateway scores raw windows through score_windows (and scaled ones through score_scaled)
    raw = np.stack([table.values[e - scorer.window + 1:e + 1] for e in rows.end_rows[:50]])
    gateway_scores, contrib = scorer.score_windows(raw)
    assert np.array_equal(gateway_scores, rows.scores[:50]) and np.allclose(contrib.sum(axis=1), 1.0)
    lab = table.labels[rows.end_rows]
    assert np.median(rows.scores[lab == 1]) > np.quantile(rows.scores[lab == 0], 0.99)


def test_lstm_vae_with_kl_score_exports_fused_lstm(vibration_csvs: dict[str, Path], tmp_path: Path) -> None:
    from trainer.api import DataSpec, train_bundle

    out = tmp_path / "lv.ewb"
    train_bundle(DataSpec((str(vibration_csvs["healthy"]),)), out, model="lstm-vae", window=16, stride=8, epochs=2,
                 patience=1, verbose=0, log=lambda _: None, score=ScoreConfig(latent="kl"),
                 training=TrainingOptions(anneal="linear", anneal_epochs=1))
    b = Bundle.load(out)
    ops = b.manifest["models"]["model_int8.tflite"]["ops"]
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in ops and not [op for op in ops if op.startswith(("WHILE", "FLEX", "CUSTOM"))]
    assert b.manifest["parity"]["model_int8.tflite"]["passed"]
    ref = b.read_arrays("reference_windows.npz")["validation"][:20]
    recon, stats = BundleScorer(b).model.predict(ref)
    assert recon.shape == ref.shape and stats is not None and stats.shape == (20, 16)


def test_regularised_conv_trains_and_records_its_options(vibration_csvs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "reg.ewb"
    code, output = run_cli("train", vibration_csvs["healthy"], "--window", 16, "--stride", 8, "--epochs", 2,
                           "--patience", 1, "--noise-std", 0.1, "--mask-prob", 0.1, "--activity-l1", 1e-4,
                           "--weight-decay", 1e-4, "--contractive", 1e-3, "--out", out)
    assert code == 0, output
    b = Bundle.load(out)
    assert b.manifest["model"]["training"] | {} == {**TrainingOptions().to_manifest(), "noise_std": 0.1, "mask_prob": 0.1,
                                                    "activity_l1": 1e-4, "weight_decay": 1e-4, "contractive": 1e-3}
    assert b.manifest["parity"]["model_int8.tflite"]["passed"] and b.manifest["score"] == ScoreConfig().to_manifest()


BAD = {
    "negative beta": (["--model", "conv-vae", "--beta", "-1"], "--beta -1.0 must be"),
    "negative lambda": (["--model", "conv-vae", "--latent-score", "kl", "--latent-weight", "-0.5"], "--latent-weight (lambda) -0.5"),
    "latent larger than input": (["--window", "4", "--latent", "50"], "--latent 50 is larger than the input"),
    "latent score without vae": (["--latent-score", "kl"], "needs a variational model"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_vae_options_are_one_line_exit_2(case: str, vibration_csvs: dict[str, Path], tmp_path: Path) -> None:
    extra, expected = BAD[case]
    out = tmp_path / "b.ewb"
    code, output = run_cli("train", vibration_csvs["healthy"], "--epochs", "1", "--out", out, *extra)
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert code == 2 and len(errors) == 1 and expected in errors[0], output
    assert not out.exists()


def test_blob_anomaly_cluster_is_separated() -> None:
    """make_blobs, 15 features, std 1.75: train on two clusters, the third is the anomaly."""
    datasets = pytest.importorskip("sklearn.datasets")
    from trainer.detector import AutoencoderDetector
    from trainer.export import roc_auc

    X, y = datasets.make_blobs(n_samples=1500, n_features=15, centers=3, cluster_std=1.75, random_state=7)
    normal, anomalous = X[y != 2], X[y == 2]
    det = AutoencoderDetector(model="dense", window=1, epochs=25, patience=5, batch_size=32, seed=0, verbose=0,
                              model_params={"latent": 2, "hidden": 16}).fit(normal[:800])
    test = np.concatenate([normal[800:], anomalous])
    labels = np.r_[np.zeros(len(normal) - 800), np.ones(len(anomalous))]
    scores = det.anomaly_score(test[:, None, :])
    assert roc_auc(scores, labels) > 0.95
    assert det.is_anomaly(anomalous[:, None, :]).mean() > 0.8


def test_vae_bundle_reexports_and_shows_info(conv_vae_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "f16.ewb"
    code, output = run_cli("export", conv_vae_bundle, "--quantize", "float16", "--out", out)
    assert code == 0, output
    b = Bundle.load(out)
    assert b.runtime_model == "model_float16.tflite" and b.manifest["parity"]["model_float16.tflite"]["spearman"] > 0.99
    assert BundleScorer(b).model.has_latent
    code, output = run_cli("info", out)
    assert code == 0 and "CONCATENATION" in output
