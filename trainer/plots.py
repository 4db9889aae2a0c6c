"""The evaluation plots (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from numpy.typing import NDArray

from edge_runtime.data import SensorTable
from edge_runtime.errors import require
from edge_runtime.windows import segment_bounds

__all__ = ["plot_timeline", "plot_histogram", "plot_curves"]

MAX_SEGMENTS_SHOWN = 6


def _pyplot() -> Any:
    mpl = require("matplotlib", "train")
    mpl.use("Agg")
    return require("matplotlib.pyplot", "train")


def plot_timeline(path: Path, table: SensorTable, ends: NDArray[np.int64], scores: NDArray[Any],
                  threshold: float, channels: Sequence[str]) -> None:
    """Score per window over time, threshold, and labelled anomalous spans; a few units side by side."""
    plt = _pyplot()
    bounds = segment_bounds(table.segments, len(table))[:MAX_SEGMENTS_SHOWN]
    fig, axes = plt.subplots(1, len(bounds), figsize=(min(4 * len(bounds), 16), 3.4), sharey=True, squeeze=False)
    for ax, (start, stop) in zip(axes[0], bounds):
        sel = (ends >= start) & (ends < stop)
        x = ends[sel] - start
        ax.plot(x, scores[sel], lw=1, color="tab:blue", label="score")
        ax.axhline(threshold, color="tab:red", ls="--", lw=1, label="threshold")
        if table.labels is not None:
            lab = table.labels[start:stop] == 1
            if lab.any():
                ax.axvspan(int(np.argmax(lab)), stop - start, color="tab:red", alpha=0.12, label="labelled anomalous")
        unit = table.extra.get("unit")
        ax.set_title(f"unit {unit[start]}" if unit is not None else f"segment {table.segments[start]}", fontsize=9)
        ax.set_xlabel("row (cycle)" if unit is not None else "row")
        ax.set_yscale("log")
    axes[0][0].set_ylabel("anomaly score")
    axes[0][-1].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_histogram(path: Path, scores: NDArray[Any], labels: NDArray[Any], threshold: float) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    bins = np.logspace(np.log10(max(scores.min(), 1e-6)), np.log10(scores.max()), 60)
    ax.hist(scores[labels == 0], bins=bins, alpha=0.6, label="normal", color="tab:blue")
    ax.hist(scores[labels == 1], bins=bins, alpha=0.6, label="anomalous", color="tab:orange")
    ax.axvline(threshold, color="tab:red", ls="--", label="threshold")
    ax.set_xscale("log")
    ax.set_xlabel("anomaly score")
    ax.set_ylabel("windows")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(path: Path, curves: dict[str, NDArray[Any]], labels: NDArray[Any]) -> None:
    plt = _pyplot()
    metrics = require("sklearn.metrics", "train")
    fig, (roc, pr) = plt.subplots(1, 2, figsize=(9, 3.8))
    for name, s in curves.items():
        fpr, tpr, _ = metrics.roc_curve(labels, s)
        prec, rec, _ = metrics.precision_recall_curve(labels, s)
        roc.plot(fpr, tpr, label=f"{name} ({metrics.roc_auc_score(labels, s):.3f})")
        pr.plot(rec, prec, label=f"{name} ({metrics.average_precision_score(labels, s):.3f})")
    roc.plot([0, 1], [0, 1], color="grey", lw=0.5)
    roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    pr.set(xlabel="recall", ylabel="precision", title="precision-recall")
    roc.legend(fontsize=8)
    pr.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
