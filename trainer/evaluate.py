"""``edgewatch evaluate``: how well a bundle separates labelled data, next to baselines.

Scores come from the bundle's runtime model through the gateway's scorer, so
the figures are the ones the gateway will live with. Baselines are fitted on
the normal windows stored in the bundle (its training sample), calibrated with
the same threshold method, and scored on exactly the same windows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from edge_runtime.bundle import Bundle
from edge_runtime.categorical import load_bundle_table
from edge_runtime.data import SensorTable
from edge_runtime.errors import DataError, require
from edge_runtime.scorer import BundleScorer
from edge_runtime.thresholds import choose_threshold
from edge_runtime.windows import segment_bounds, sliding_windows
from trainer.baselines import make_baselines

__all__ = ["evaluate_bundle", "detection_metrics", "first_alarms", "AlarmSummary"]


def detection_metrics(scores: NDArray[Any], labels: NDArray[Any], threshold: float) -> dict[str, float]:
    """ROC-AUC, PR-AUC and the confusion figures at ``threshold`` (labels 0/1)."""
    metrics = require("sklearn.metrics", "train")
    y = np.asarray(labels).astype(int)
    pred = np.asarray(scores) > threshold
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred & (y == 0)))
    fn = int(np.sum(~pred & (y == 1)))
    tn = int(np.sum(~pred & (y == 0)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "roc_auc": float(metrics.roc_auc_score(y, scores)),
        "pr_auc": float(metrics.average_precision_score(y, scores)),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "false_alarm_rate": fp / (fp + tn) if fp + tn else 0.0,
        "missed_alarm_rate": fn / (fn + tp) if fn + tp else 0.0,
        "threshold": float(threshold),
    }


def first_alarms(scores: NDArray[Any], threshold: float, window_segments: NDArray[Any], k: int, n: int) -> dict[int, int]:
    """Index of the first alarm the gateway would raise in each segment (k of the last n windows over)."""
    from edge_runtime.alarms import raised_indices
    from edge_runtime.config import AlarmSettings

    settings = AlarmSettings(k=k, n=n)
    out: dict[int, int] = {}
    for start, stop in segment_bounds(window_segments, len(scores)):
        raised = raised_indices(scores[start:stop].tolist(), threshold, settings)
        if raised:
            out[int(window_segments[start])] = start + raised[0]
    return out


@dataclass(frozen=True)
class AlarmSummary:
    segments: int
    alarmed: int
    alarmed_while_healthy: int
    median_lead: float | None
    lead_unit: str

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _alarm_summary(table: SensorTable, ends: NDArray[np.int64], scores: NDArray[Any], threshold: float,
                   k: int, n: int) -> AlarmSummary:
    segs = table.segments[ends]
    alarms = first_alarms(scores, threshold, segs, k, n)
    leads: list[float] = []
    healthy_alarms = 0
    rul = table.extra.get("rul")
    for seg, idx in alarms.items():
        row = ends[idx]
        if rul is not None:
            if rul[row] > 125:
                healthy_alarms += 1
            else:
                leads.append(float(rul[row]))
        elif table.labels is not None:
            seg_rows = np.flatnonzero(table.segments == seg)
            onset = seg_rows[table.labels[seg_rows] == 1]
            if len(onset) == 0 or row < onset[0]:
                healthy_alarms += 1
            else:
                leads.append(float(row - onset[0]))
    unit = "cycles of RUL left at the first alarm" if rul is not None else "rows from fault onset to the first alarm"
    return AlarmSummary(len(np.unique(segs)), len(alarms), healthy_alarms,
                        float(np.median(leads)) if leads else None, unit)


def evaluate_bundle(bundle_path: str, data: Sequence[str], *, label_column: str, fmt: str = "auto",
                    units: str | None = None, time_column: str | None = None, report_dir: str = "report",
                    alarm_k: int = 3, alarm_n: int = 3, baselines: bool = True, delegate: str = "auto",
                    log: Callable[[str], None] = print) -> dict[str, Any]:
    bundle = Bundle.load(bundle_path)
    table, unseen = load_bundle_table(bundle, data, format=fmt, time_column=time_column,
                                      label_column=label_column, units=units)
    for u in unseen:
        log(f"warning: {u.message()}")
    if table.labels is None or not np.any(table.labels == 1) or not np.any(table.labels == 0):
        raise DataError(f"{table.source}: --labels {label_column!r} needs both normal (0) and anomalous (1) rows to evaluate")
    scorer = BundleScorer(bundle, delegate=delegate)
    result = scorer.score_rows(table.values, table.segments)
    labels = table.labels[result.end_rows]
    known = ~np.isnan(labels)
    y = labels[known].astype(int)
    results: dict[str, Any] = {"autoencoder": {
        **detection_metrics(result.scores[known], y, scorer.threshold),
        "alarms": _alarm_summary(table, result.end_rows, result.scores, scorer.threshold, alarm_k, alarm_n).as_dict(),
    }}
    curves = {"autoencoder": result.scores[known]}
    if baselines:
        ref = bundle.read_arrays("reference_windows.npz") if bundle.has("reference_windows.npz") else None
        if ref is None:
            log("no reference_windows.npz in the bundle (gateway-only bundle): baselines skipped")
        else:
            windows, ends = sliding_windows(scorer.scaler.transform(table.values), bundle.window, 1, table.segments)
            method = bundle.manifest["threshold"].get("calibrated_with", "percentile:99.5")
            for base in make_baselines():
                base.fit(ref["representative"])
                thr = choose_threshold(base.anomaly_score(ref["validation"]), method).value
                s = base.anomaly_score(windows)
                results[base.name] = {**detection_metrics(s[known], y, thr),
                                      "alarms": _alarm_summary(table, ends, s, thr, alarm_k, alarm_n).as_dict()}
                curves[base.name] = s[known]
    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    from trainer.plots import plot_curves, plot_histogram, plot_timeline

    plot_timeline(out / "score_timeline.png", table, result.end_rows, result.scores, scorer.threshold, bundle.channel_names)
    plot_histogram(out / "score_histogram.png", result.scores[known], y, scorer.threshold)
    plot_curves(out / "roc_pr.png", curves, y)
    summary = {"bundle": str(bundle_path), "model": bundle.model_id, "version": bundle.version,
               "runtime_model": scorer.member, "backend": scorer.backend, "data": table.source,
               "windows": int(len(result.scores)), "labelled_windows": int(known.sum()),
               "anomalous_windows": int(y.sum()), "alarm_rule": f"{alarm_k} of {alarm_n}", "results": results,
               **({"unseen_categories": {u.column: {"rows": u.rows, "values": list(u.values)} for u in unseen}}
                  if unseen else {})}
    (out / "metrics.json").write_text(json.dumps(summary, indent=1))
    (out / "report.md").write_text(_markdown(summary))
    for name, r in results.items():
        log(f"{name:16s} ROC-AUC {r['roc_auc']:.4f}  PR-AUC {r['pr_auc']:.4f}  F1 {r['f1']:.3f}  "
            f"false alarms {r['false_alarm_rate']:.3%}  missed {r['missed_alarm_rate']:.3%}")
    log(f"wrote {out / 'report.md'}")
    return summary


def _markdown(s: dict[str, Any]) -> str:
    lines = [
        f"# Evaluation of {s['model']} v{s['version']}",
        "",
        f"Data: `{s['data']}`: {s['windows']} windows, {s['labelled_windows']} labelled "
        f"({s['anomalous_windows']} anomalous). Runtime model `{s['runtime_model']}` on {s['backend']}. "
        f"Alarm rule: {s['alarm_rule']} windows over the threshold.",
        "",
        "| detector | ROC-AUC | PR-AUC | precision | recall | F1 | false-alarm rate | missed-alarm rate | units alarmed | alarmed while healthy | median lead |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in s["results"].items():
        a = r["alarms"]
        lead = f"{a['median_lead']:.0f}" if a["median_lead"] is not None else "-"
        lines.append(f"| {name} | {r['roc_auc']:.4f} | {r['pr_auc']:.4f} | {r['precision']:.3f} | {r['recall']:.3f} | "
                     f"{r['f1']:.3f} | {r['false_alarm_rate']:.2%} | {r['missed_alarm_rate']:.2%} | "
                     f"{a['alarmed']}/{a['segments']} | {a['alarmed_while_healthy']} | {lead} |")
    unit = next(iter(s["results"].values()))["alarms"]["lead_unit"]
    lines += ["", f"Median lead: {unit}.", "", "![scores over time](score_timeline.png)", "",
              "![score histogram](score_histogram.png)", "", "![ROC and PR curves](roc_pr.png)", ""]
    return "\n".join(lines)
