"""Benchmark: every autoencoder and score combination against IsolationForest, one-class SVM, LOF and PCA.

Two datasets:

* ``cmapss`` -- the framing fixed by ../shared/data/cmapss/README.md: 14
  informative sensors; train on engines 1-80, healthy cycles (RUL > 125);
  evaluate on engines 81-100, windows of 30 cycles, labelled anomalous at
  RUL <= 60 and healthy at RUL > 125. Alarms: 3 consecutive windows over the threshold.
* ``vibration`` -- synthetic rotating-machine data (firmware_bridge.synthetic,
  1 kHz; a seed is a machine): three machines, one fault each (bearing,
  imbalance, looseness) starting at 75% of a 40 s run; train on the first half
  of every run (healthy), evaluate on the second half (healthy, then faulty);
  windows of 64, stride 4.

Autoencoders are scored by their int8 runtime model (and the float32 reference
for C-MAPSS). Variational kinds get one row per score: reconstruction only,
+KL and +Mahalanobis (the combined z-score, lambda = --latent-weight), all from
the same trained model, with the latent constants fitted on the bundle's stored
training/validation windows as ``train`` does. Baselines fit on the same scaled
training windows (one-class SVM and LOF on a 3000-window sample).

    .venv/bin/python tools/bench_cmapss.py [--datasets cmapss,vibration] [--models conv,lstm,dense,conv-vae,lstm-vae]

Writes results.md (the README table), results.json, and for backwards
compatibility cmapss.md/cmapss.json. Not a test: figures vary a little with the
machine's floating point; seeds are fixed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DATA = REPO.parent / "shared" / "data" / "cmapss" / "train_FD001.txt"
ALL_MODELS = "conv,lstm,dense,conv-vae,lstm-vae"
LATENT_VARIANTS = ("none", "kl", "mahalanobis")


def _datasets(tmp: Path, seed: int) -> dict[str, dict[str, Any]]:
    from trainer.api import DataSpec

    out: dict[str, dict[str, Any]] = {
        "cmapss": {"train": DataSpec((str(DATA),), "cmapss", units="1-80", min_rul=125),
                   "check": DataSpec((str(DATA),), "cmapss", units="81-100", label_column="label"),
                   "window": 30, "stride": 1, "float_rows": True, "smooth": 5},
    }
    from firmware_bridge.synthetic import generate, write_csv

    healthy, faults = [], []
    for i, fault in enumerate(("bearing", "imbalance", "looseness")):
        series = generate(40, 1000.0, fault=fault, fault_start=0.75, seed=seed + 10 + i)
        half = len(series.rows) // 2
        for part, rows_, labels, into in (("train", series.rows[:half], series.labels[:half], healthy),
                                          ("eval", series.rows[half:], series.labels[half:], faults)):
            path = tmp / f"vib_{fault}_{part}.csv"
            write_csv(replace(series, rows=rows_, labels=labels), path)
            into.append(str(path))
    out["vibration"] = {"train": DataSpec(tuple(healthy), label_column="label"),
                        "check": DataSpec(tuple(faults), label_column="label"),
                        # A vibration fault is a high-frequency pattern: smoothing the residual would cancel it.
                        "window": 64, "stride": 4, "float_rows": False, "smooth": 1}
    return out


def run_dataset(name: str, ds: dict[str, Any], models: list[str], args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    from sklearn.metrics import roc_auc_score

    from edge_runtime.bundle import Bundle
    from edge_runtime.preprocess import Standardizer
    from edge_runtime.scorer import BundleScorer
    from edge_runtime.scoring import ScoreConfig, anomaly_scores, fit_latent_calibration, window_scores
    from edge_runtime.thresholds import choose_threshold
    from edge_runtime.windows import sliding_windows
    from trainer.api import load_training_table, train_bundle
    from trainer.baselines import make_baselines
    from trainer.evaluate import _alarm_summary, detection_metrics
    from trainer.training import TrainingOptions

    evaluation = ds["check"].load()
    window = ds["window"]
    rows: list[dict[str, Any]] = []

    def record(detector: str, scores: np.ndarray, ends: np.ndarray, threshold: float, **extra: Any) -> None:
        lab = evaluation.labels[ends]
        known = ~np.isnan(lab)
        m = detection_metrics(scores[known], lab[known].astype(int), threshold)
        alarms = _alarm_summary(evaluation, ends, scores, threshold, 3, 3)
        rows.append({"dataset": name, "detector": detector, **{k: round(v, 4) for k, v in m.items()},
                     "alarms": alarms.as_dict(), **extra})
        print(f"{name:9s} {detector:34s} ROC-AUC {m['roc_auc']:.4f} PR-AUC {m['pr_auc']:.4f} F1 {m['f1']:.3f} "
              f"median lead {alarms.median_lead} healthy alarms {alarms.alarmed_while_healthy}", flush=True)

    for kind in models:
        vae = kind.endswith("-vae")
        out = tmp / f"{name}-{kind}.ewb"
        t0 = time.perf_counter()
        train_bundle(ds["train"], out, model=kind, window=window, stride=ds["stride"], seed=args.seed, verbose=0,
                     epochs=args.epochs, score=ScoreConfig(smooth=args.smooth or ds["smooth"]),
                     training=TrainingOptions(beta=args.beta, anneal=args.anneal, free_bits=args.free_bits),
                     check=ds["check"], force=True, log=lambda _: None)  # a gate failure is a result to report
        seconds = time.perf_counter() - t0
        bundle = Bundle.load(out)
        gate = bundle.manifest["parity"]["model_int8.tflite"]
        extra = {"train_seconds": round(seconds, 1), "parameters": bundle.manifest["model"]["parameters"],
                 "int8_gate": "passed" if gate["passed"] else "failed: " + "; ".join(gate["failures"])}
        members = ("model_float32.tflite", "model_int8.tflite") if ds["float_rows"] else ("model_int8.tflite",)
        for member in members:
            scorer = BundleScorer(bundle, member=member)
            precision = member.split("_")[1].split(".")[0]
            w, ends = sliding_windows(scorer.scaler.transform(evaluation.values), window, 1, evaluation.segments)
            recon, latent = scorer.model.predict(w)
            lab = evaluation.labels[ends]
            known = ~np.isnan(lab)
            raw = window_scores(w, recon, ScoreConfig())
            no_smooth = round(float(roc_auc_score(lab[known].astype(int), raw[known])), 4)
            ref = bundle.read_arrays("reference_windows.npz")
            rep_recon, rep_latent = scorer.model.predict(ref["representative"])
            val_recon, val_latent = scorer.model.predict(ref["validation"])
            for variant in (LATENT_VARIANTS if vae else ("none",)):
                config = replace(scorer.config, latent=variant, latent_weight=args.latent_weight)
                config = fit_latent_calibration(config, rep_latent, window_scores(ref["validation"], val_recon, config), val_latent)
                threshold = choose_threshold(anomaly_scores(ref["validation"], val_recon, val_latent, config), "percentile:99.5").value
                label = f"{kind} {precision}" + ("" if variant == "none" else f" +{variant}")
                record(label, anomaly_scores(w, recon, latent, config), ends, threshold,
                       roc_auc_without_smoothing=no_smooth if variant == "none" else "-", **extra)

    train_table = load_training_table(ds["train"])
    scaler = Standardizer.fit(train_table.values, train_table.columns)
    train_w, _ = sliding_windows(scaler.transform(train_table.values), window, ds["stride"], train_table.segments)
    eval_w, eval_ends = sliding_windows(scaler.transform(evaluation.values), window, 1, evaluation.segments)
    for base in make_baselines(args.seed):
        t0 = time.perf_counter()
        base.fit(train_w)
        seconds = time.perf_counter() - t0
        threshold = choose_threshold(base.anomaly_score(train_w), "percentile:99.5").value
        record(base.name, base.anomaly_score(eval_w), eval_ends, threshold, train_seconds=round(seconds, 1))
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """The README table: one row per dataset and detector."""
    lines = ["| dataset | detector | ROC-AUC | ROC-AUC, no smoothing | PR-AUC | F1 | false alarms | missed | median lead at first alarm | units alarmed while healthy | train time | int8 parity gate |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a = r["alarms"]
        lead = f"{a['median_lead']:.0f}" if a["median_lead"] is not None else "-"
        lines.append(f"| {r.get('dataset', 'cmapss')} | {r['detector']} | {r['roc_auc']:.3f} | {r.get('roc_auc_without_smoothing', '-')} | "
                     f"{r['pr_auc']:.3f} | {r['f1']:.3f} | {r['false_alarm_rate']:.1%} | {r['missed_alarm_rate']:.1%} | {lead} | "
                     f"{a['alarmed_while_healthy']}/{a['segments']} | {r['train_seconds']} s | {r.get('int8_gate', '-')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="cmapss,vibration")
    ap.add_argument("--models", default=ALL_MODELS)
    ap.add_argument("--epochs", type=int, default=80)
    ap.add_argument("--smooth", type=int, default=None, help="residual smoothing (default: 5 for cmapss, 1 for vibration)")
    ap.add_argument("--beta", type=float, default=1.0)
    ap.add_argument("--anneal", default="linear", choices=["none", "linear", "cyclical"])
    ap.add_argument("--free-bits", type=float, default=0.0)
    ap.add_argument("--latent-weight", type=float, default=1.0, help="lambda of the combined score")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(REPO / "tools" / "results"))
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    sets = _datasets(tmp, args.seed)
    models = [m for m in args.models.split(",") if m]
    rows: list[dict[str, Any]] = []
    for name in args.datasets.split(","):
        rows += run_dataset(name, sets[name], models, args, tmp)
    outdir = Path(args.out)
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "results.json").write_text(json.dumps(rows, indent=1))
    (outdir / "results.md").write_text(table(rows))
    cmapss = [r for r in rows if r["dataset"] == "cmapss"]
    if cmapss:
        (outdir / "cmapss.json").write_text(json.dumps(cmapss, indent=1))
        (outdir / "cmapss.md").write_text(table(cmapss))
    print(table(rows))


if __name__ == "__main__":
    main()
