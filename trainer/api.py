"""Training a bundle from Python: what ``edgewatch train`` does, minus the CLI.

>>> from trainer.api import train_bundle                      # doctest: +SKIP
>>> train_bundle(["vib.csv"], out="pump.ewb", model="conv", window=64)
"""

from __future__ import annotations

import datetime as _dt
import getpass
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from edge_runtime import __version__
from edge_runtime.bundle import SCHEMA_VERSION, Bundle
from edge_runtime.categorical import OneHotEncoder, encode_table
from edge_runtime.data import SensorTable, concat_tables, load_table
from edge_runtime.errors import ConfigError, DataError
from edge_runtime.preprocess import Standardizer
from edge_runtime.scoring import ScoreConfig
from edge_runtime.windows import sliding_windows
from trainer.detector import AutoencoderDetector
from trainer.export import REPRESENTATIVE_WINDOWS, Gate, export_bundle, keras_to_bytes
from trainer.training import TrainingOptions

__all__ = ["DataSpec", "train_bundle", "load_training_table", "labelled_windows"]

#: Validation windows kept in the bundle for re-export and its parity gate.
STORED_VALIDATION_WINDOWS = 1000


@dataclass(frozen=True)
class DataSpec:
    """How to read data files: the same options for training and checking data."""

    paths: tuple[str, ...]
    format: str = "auto"
    columns: tuple[str, ...] | None = None
    time_column: str | None = None
    label_column: str | None = None
    units: str | None = None
    min_rul: int | None = None
    categorical: tuple[str, ...] | None = None

    def load(self) -> SensorTable:
        """The rows as read; categorical columns are raw text in ``table.categories`` until encoded."""
        tables = [load_table(p, format=self.format, columns=self.columns, time_column=self.time_column,
                             label_column=self.label_column, units=self.units, categorical=self.categorical)
                  for p in self.paths]
        table = concat_tables(tables)
        if self.min_rul is not None:
            if "rul" not in table.extra:
                raise DataError(f"{table.source}: --min-rul needs C-MAPSS data (pass --format cmapss)")
            table = table.select(table.extra["rul"] > self.min_rul)
        return table


def load_training_table(spec: DataSpec) -> SensorTable:
    """Training rows: with labels, only the rows labelled normal (0)."""
    table = spec.load()
    if table.labels is not None:
        table = table.select(table.labels == 0)
        if len(table) == 0:
            raise DataError(f"{spec.paths[0]}: no rows labelled normal (0) in --labels {spec.label_column!r}; the model learns from healthy rows")
    return table


def labelled_windows(table: SensorTable, detector_or_scaler: Any, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Scaled windows with a known label (label of the last row); unlabelled ones dropped."""
    if table.labels is None:
        raise DataError(f"{table.source}: no labels; pass --check-labels COLUMN")
    scaler = getattr(detector_or_scaler, "scaler_", detector_or_scaler)
    windows, ends = sliding_windows(scaler.transform(table.values), window, 1, table.segments)
    lab = table.labels[ends]
    keep = ~np.isnan(lab)
    return windows[keep], lab[keep].astype(int)


def train_bundle(
    data: DataSpec | Sequence[str],
    out: str | os.PathLike[str],
    *,
    model: str = "conv",
    window: int = 30,
    stride: int = 1,
    epochs: int = 80,
    patience: int = 8,
    batch_size: int = 64,
    seed: int = 0,
    score: ScoreConfig = ScoreConfig(),
    threshold_method: str = "percentile:99.5",
    quantize: str = "int8",
    target: str = "cpu",
    check: DataSpec | None = None,
    gate: Gate = Gate(),
    force: bool = False,
    model_id: str | None = None,
    sample_rate_hz: float | None = None,
    channel_units: dict[str, str] | None = None,
    verbose: int | None = None,
    log: Callable[[str], None] = print,
    model_params: dict[str, Any] | None = None,
    training: TrainingOptions = TrainingOptions(),
) -> Bundle:
    """Train, calibrate, export and write a bundle to ``out`` (atomically)."""
    spec = data if isinstance(data, DataSpec) else DataSpec(tuple(str(p) for p in data))
    if window < 1 or stride < 1:
        raise ConfigError(f"--window {window!r} and --stride {stride!r} must be >= 1")
    if window == 1 and model != "dense":
        raise ConfigError(f"--window 1 (one record at a time) needs --model dense, not {model!r}; "
                          "conv and lstm models need a window of at least 2")
    out = Path(out)
    if out.exists() and out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a directory; give a file name such as {out / 'model.ewb'}")
    _probe_writable(out)
    table = load_training_table(spec)
    check_raw = None
    if check is not None:
        # The check data must give the model the training columns in the
        # training order, whatever its own file holds; read it now so that a
        # missing column fails before minutes of training.
        check_raw = replace(check, columns=table.columns, categorical=spec.categorical).load()
    encoder = OneHotEncoder.fit(table.categories, table.source) if table.categories else None
    table, _ = encode_table(table, encoder)
    if len(table) < window:
        raise DataError(f"{table.source}: {len(table)} healthy rows is fewer than one window of {window}; give more data or a smaller --window")
    Standardizer.fit(table.values, table.columns, table.source)  # refuse constant channels before training
    log(f"training {model} autoencoder on {len(table)} rows x {len(table.columns)} channels from {table.source}")
    det = AutoencoderDetector(model=model, window=window, stride=stride, epochs=epochs, patience=patience,
                              batch_size=batch_size, seed=seed, score=score,
                              threshold_method=threshold_method, verbose=verbose, model_params=model_params,
                              training=training)
    started = _dt.datetime.now(_dt.timezone.utc)
    det.fit(table.values, table.segments, table.columns, source=table.source)
    seconds = (_dt.datetime.now(_dt.timezone.utc) - started).total_seconds()
    log(f"trained {len(det.history_['loss'])} epochs in {seconds:.0f} s; validation split: {det.split_}")

    rng = np.random.default_rng(seed)
    rep_idx = np.sort(rng.choice(len(det.train_windows_), size=min(REPRESENTATIVE_WINDOWS, len(det.train_windows_)), replace=False))
    val_idx = np.sort(rng.choice(len(det.val_windows_), size=min(STORED_VALIDATION_WINDOWS, len(det.val_windows_)), replace=False))
    units = channel_units or {}
    manifest: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "model": {
            "id": model_id or out.stem,
            "version": 1,
            "type": model,
            "params": dict(model_params or {}),
            "training": training.to_manifest(),
            "created": started.isoformat(timespec="seconds"),
            "created_by": _user(),
            "edgewatch_version": __version__,
            "parameters": int(det.model_.count_params()),
        },
        "channels": [{"name": c, "unit": units.get(c)} for c in table.columns],
        "sample_rate_hz": sample_rate_hz or table.sample_rate_hz,
        "window": window,
        "stride": stride,
        "scaler": det.scaler_.to_manifest(),
        **({"categorical": encoder.to_manifest()} if encoder is not None else {}),
        "score": det.score_.to_manifest(),
        "threshold": {"value": det.threshold_, "method": det.threshold_method_, "scores_from": "keras float32",
                      "calibrated_with": det.threshold_method_, "history": []},
        "runtime": {"model": "keras_model.h5"},
        "training": {
            "data_fingerprint": table.fingerprint(),
            "sources": list(spec.paths),
            "units": spec.units,
            "min_rul": spec.min_rul,
            "rows": len(table),
            "train_windows": int(len(det.train_windows_)),
            "validation_windows": int(len(det.val_windows_)),
            "validation_split": det.split_,
            "epochs": len(det.history_["loss"]),
            "seed": seed,
            "seconds": round(seconds, 1),
        },
        "metrics": {
            "train_loss": det.history_["loss"][-1],
            "best_val_loss": min(det.history_["val_loss"]),
        },
        "members": {},
    }
    bundle = Bundle(manifest, {}, path=out)
    bundle.put("keras_model.h5", keras_to_bytes(det.model_))
    bundle.put_arrays("reference_windows.npz", representative=det.train_windows_[rep_idx],
                      validation=det.val_windows_[val_idx])
    labelled = None
    if check is not None and check_raw is not None:
        check_table, unseen = encode_table(check_raw, encoder)
        for u in unseen:
            log(f"warning: --check data: {u.message()}")
        labelled = labelled_windows(check_table, det, window)
        log(f"checking against {len(labelled[1])} labelled windows ({int(labelled[1].sum())} anomalous) from {', '.join(check.paths)}")
    log(f"exporting {quantize} TFLite")
    export_bundle(bundle, quantize=quantize, target=target, labelled=labelled, gate=gate, force=force,
                  keras_model=det.model_, all_validation_windows=det.val_windows_, log=log)
    bundle.save(out)
    log(f"wrote {out} (threshold {bundle.threshold:.6g}, runtime model {bundle.runtime_model})")
    return bundle


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _probe_writable(out: Path) -> None:
    """Fail now, not after minutes of training, when ``out`` cannot be written."""
    existing = next((p for p in (out.parent, *out.parent.parents) if p.exists()), Path("."))
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise ConfigError(f"--out {str(out)!r}: cannot create files in {existing} ({err.strerror or err}); "
                          "choose a writable location") from err
