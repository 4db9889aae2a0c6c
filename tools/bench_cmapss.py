"""C-MAPSS FD001 benchmark: autoencoders against IsolationForest and PCA, float32 against int8.

The framing is fixed by ../shared/data/cmapss/README.md: 14 informative
sensors; train on engines 1-80, healthy cycles (RUL > 125); evaluate on engines
81-100, windows of 30 cycles, labelled anomalous at RUL <= 60 and healthy at
RUL > 125. Alarms: 3 consecutive windows over the threshold.

    .venv/bin/python tools/bench_cmapss.py [--models conv,lstm,dense] [--out tools/results]

Writes cmapss.md (the README table) and cmapss.json. Not a test: figures vary
a little with the machine's floating point; seeds are fixed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DATA = REPO.parent / "shared" / "data" / "cmapss" / "train_FD001.txt"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="conv,lstm,dense")
    ap.add_argument("--smooth", type=int, default=5, help="residual smoothing used for the trained bundles")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(REPO / "tools" / "results"))
    args = ap.parse_args()

    from edge_runtime.bundle import Bundle
    from edge_runtime.scorer import BundleScorer
    from edge_runtime.scoring import ScoreConfig, window_scores
    from edge_runtime.thresholds import choose_threshold
    from edge_runtime.windows import sliding_windows
    from trainer.api import DataSpec, labelled_windows, load_training_table, train_bundle
    from trainer.baselines import make_baselines
    from trainer.evaluate import _alarm_summary, detection_metrics

    train_spec = DataSpec((str(DATA),), "cmapss", units="1-80", min_rul=125)
    check_spec = DataSpec((str(DATA),), "cmapss", units="81-100", label_column="label")
    evaluation = check_spec.load()
    rows: list[dict] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-cmapss-"))

    def record(name: str, scores: np.ndarray, ends: np.ndarray, threshold: float, **extra: object) -> dict:
        lab = evaluation.labels[ends]
        known = ~np.isnan(lab)
        m = detection_metrics(scores[known], lab[known].astype(int), threshold)
        alarms = _alarm_summary(evaluation, ends, scores, threshold, 3, 3)
        row = {"detector": name, **{k: round(v, 4) for k, v in m.items()}, "alarms": alarms.as_dict(), **extra}
        rows.append(row)
        print(f"{name:28s} ROC-AUC {m['roc_auc']:.4f} PR-AUC {m['pr_auc']:.4f} F1 {m['f1']:.3f} "
              f"median lead {alarms.median_lead} healthy alarms {alarms.alarmed_while_healthy}", flush=True)
        return row

    for kind in args.models.split(","):
        out = tmp / f"{kind}.ewb"
        t0 = time.perf_counter()
        train_bundle(train_spec, out, model=kind, window=30, seed=args.seed, verbose=0,
                     score=ScoreConfig(smooth=args.smooth), check=check_spec, log=lambda _: None)
        seconds = time.perf_counter() - t0
        bundle = Bundle.load(out)
        for member in ("model_float32.tflite", "model_int8.tflite"):
            scorer = BundleScorer(bundle, member=member)
            res = scorer.score_rows(evaluation.values, evaluation.segments)
            threshold = bundle.manifest["parity"]["model_int8.tflite"]["threshold_reference"] if member == "model_float32.tflite" else bundle.threshold
            # Same reconstructions scored without smoothing: what the default --smooth 1 gives.
            w, _ = sliding_windows(scorer.scaler.transform(evaluation.values), 30, 1, evaluation.segments)
            raw = window_scores(w, scorer.model.reconstruct(w), ScoreConfig())
            lab = evaluation.labels[res.end_rows]
            known = ~np.isnan(lab)
            from sklearn.metrics import roc_auc_score
            record(f"{kind} {member.split('_')[1].split('.')[0]}", res.scores, res.end_rows, threshold,
                   train_seconds=round(seconds, 1), parameters=bundle.manifest["model"]["parameters"],
                   roc_auc_without_smoothing=round(float(roc_auc_score(lab[known].astype(int), raw[known])), 4))

    train_table = load_training_table(train_spec)
    from edge_runtime.preprocess import Standardizer
    scaler = Standardizer.fit(train_table.values, train_table.columns)
    train_w, _ = sliding_windows(scaler.transform(train_table.values), 30, 1, train_table.segments)
    eval_w, eval_ends = sliding_windows(scaler.transform(evaluation.values), 30, 1, evaluation.segments)
    for base in make_baselines(args.seed):
        t0 = time.perf_counter()
        base.fit(train_w)
        seconds = time.perf_counter() - t0
        threshold = choose_threshold(base.anomaly_score(train_w), "percentile:99.5").value
        record(base.name, base.anomaly_score(eval_w), eval_ends, threshold, train_seconds=round(seconds, 1))

    outdir = Path(args.out)
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "cmapss.json").write_text(json.dumps(rows, indent=1))
    lines = ["| detector | ROC-AUC | ROC-AUC, no smoothing | PR-AUC | F1 | false alarms | missed | median RUL at first alarm | engines alarmed while healthy | train time |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a = r["alarms"]
        lead = f"{a['median_lead']:.0f}" if a["median_lead"] is not None else "-"
        lines.append(f"| {r['detector']} | {r['roc_auc']:.3f} | {r.get('roc_auc_without_smoothing', '-')} | {r['pr_auc']:.3f} | {r['f1']:.3f} | "
                     f"{r['false_alarm_rate']:.1%} | {r['missed_alarm_rate']:.1%} | {lead} | {a['alarmed_while_healthy']}/{a['segments']} | {r['train_seconds']} s |")
    (outdir / "cmapss.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
