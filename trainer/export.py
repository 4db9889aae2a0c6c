"""TFLite export with an accuracy-parity gate.

``export_bundle`` converts a bundle's Keras model (batch 1, static shapes) to
float32 TFLite -- kept as the reference -- and to the requested precision;
checks that the converter produced only fused builtin ops (no WHILE loops, no
Flex ops); scores held-out normal windows (and labelled windows when given)
with both models through the gateway's own :class:`edge_runtime.scorer.TFLiteModel`;
recalibrates the threshold on the new model's scores; and refuses when the
quantized model would alarm differently from the float one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge_runtime.bundle import Bundle
from edge_runtime.edgetpu import edgetpu_report
from edge_runtime.errors import ConfigError, EdgewatchError
from edge_runtime.scorer import EDGETPU_MEMBER, TFLiteModel
from edge_runtime.scoring import ScoreConfig, anomaly_scores
from edge_runtime.thresholds import choose_threshold
from trainer._tf import tf_and_keras
from trainer.models import build_model

__all__ = ["QUANTIZATIONS", "TARGETS", "ParityGateError", "ConverterError", "export_bundle",
           "keras_to_bytes", "keras_from_bundle", "spearman", "roc_auc"]

QUANTIZATIONS = ("int8", "float16", "dynamic", "float32")
TARGETS = ("cpu", "edgetpu", "gpu")
FORBIDDEN_OPS = ("WHILE", "CUSTOM", "FLEX")
REPRESENTATIVE_WINDOWS = 300


class ParityGateError(EdgewatchError):
    """The quantized model scores too differently from the float reference."""

    exit_code = 2


class ConverterError(EdgewatchError):
    """The TFLite converter produced ops the gateway must not depend on."""


@dataclass(frozen=True)
class Gate:
    max_auc_drop: float = 0.005
    min_agreement: float = 0.99

    def __post_init__(self) -> None:
        if not 0 <= self.max_auc_drop < 1:
            raise ConfigError(f"--max-auc-drop {self.max_auc_drop!r} must be between 0 and 1")
        if not 0 < self.min_agreement <= 1:
            raise ConfigError(f"--min-agreement {self.min_agreement!r} must be in (0, 1]")


# ---------------------------------------------------------------- keras I/O
def keras_to_bytes(model: Any) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.h5")
        with warnings.catch_warnings():
            # HDF5 is "legacy" for tf_keras, but it is one self-contained file
            # that loads without custom objects: what a bundle member needs.
            warnings.simplefilter("ignore", UserWarning)
            model.save(path, save_format="h5")
        return Path(path).read_bytes()


def keras_from_bundle(bundle: Bundle) -> Any:
    _, keras = tf_and_keras()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.h5")
        Path(path).write_bytes(bundle.read("keras_model.h5"))
        return keras.models.load_model(path, compile=False)


# --------------------------------------------------------------- conversion
def _convert(model: Any, bundle: Bundle, quantize: str, representative: NDArray[np.float32]) -> bytes:
    tf, _ = tf_and_keras()
    params = bundle.manifest["model"].get("params") or {}
    fixed = build_model(bundle.model_type, bundle.window, len(bundle.channel_names), batch_size=1, **params)
    fixed.set_weights(model.get_weights())
    converter = tf.lite.TFLiteConverter.from_keras_model(fixed)
    if quantize == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([representative[i:i + 1]] for i in range(len(representative)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    elif quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    with warnings.catch_warnings():
        # "Statistics for quantized inputs were expected": we set int8 I/O
        # on purpose and read the scales back from the converted model.
        warnings.simplefilter("ignore", UserWarning)
        return bytes(converter.convert())


def _ops(data: bytes, name: str) -> tuple[TFLiteModel, list[str]]:
    # The reference kernels show the model's own ops (XNNPACK would fold them into DELEGATE).
    model = TFLiteModel(data, delegate="cpu", name=name)
    ops = model.ops()
    bad = sorted({op for op in ops if any(op.upper().startswith(f) for f in FORBIDDEN_OPS)})
    if bad:
        raise ConverterError(
            f"{name}: the converter emitted {', '.join(bad)}; the gateway needs fused builtin ops only. "
            "Build LSTMs with tf_keras and a fixed batch of 1 (edgewatch does), or report this model"
        )
    return model, ops


# ------------------------------------------------------------------ metrics
def _ranks(x: NDArray[Any]) -> NDArray[np.float64]:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    # average ranks of ties
    _, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=ranks)
    return sums[inv] / counts[inv]


def spearman(a: NDArray[Any], b: NDArray[Any]) -> float:
    ra, rb = _ranks(np.asarray(a)), _ranks(np.asarray(b))
    if ra.std() == 0 or rb.std() == 0:
        return 1.0 if np.array_equal(ra, rb) else 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def roc_auc(scores: NDArray[Any], labels: NDArray[Any]) -> float:
    """Mann-Whitney ROC-AUC (ties count half); numpy only, same as sklearn's."""
    labels = np.asarray(labels).astype(bool)
    r = _ranks(np.asarray(scores, dtype=np.float64))
    n_pos, n_neg = labels.sum(), (~labels).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((r[labels].sum() - n_pos * (n_pos - 1) / 2) / (n_pos * n_neg))


def parity_figures(ref_scores: NDArray[np.float64], new_scores: NDArray[np.float64], n_normal: int,
                   labels: NDArray[Any] | None, threshold_method: str) -> dict[str, Any]:
    """Compare two scorings of the same windows; the first ``n_normal`` are held-out normal windows."""
    t_ref = choose_threshold(ref_scores[:n_normal], threshold_method).value
    t_new = choose_threshold(new_scores[:n_normal], threshold_method).value
    rel = np.abs(new_scores - ref_scores) / np.maximum(np.abs(ref_scores), 1e-12)
    figures: dict[str, Any] = {
        "windows": int(len(ref_scores)),
        "spearman": round(spearman(ref_scores, new_scores), 6),
        "relative_error_median": round(float(np.median(rel)), 6),
        "relative_error_p95": round(float(np.percentile(rel, 95)), 6),
        "threshold_reference": t_ref,
        "threshold_recalibrated": t_new,
        "decision_agreement": round(float(np.mean((ref_scores > t_ref) == (new_scores > t_new))), 6),
    }
    if labels is not None:
        lab = np.asarray(labels)
        auc_ref = roc_auc(ref_scores[n_normal:], lab)
        auc_new = roc_auc(new_scores[n_normal:], lab)
        figures.update(roc_auc_reference=round(auc_ref, 6), roc_auc_quantized=round(auc_new, 6),
                       roc_auc_drop=round(auc_ref - auc_new, 6))
    return figures


# ------------------------------------------------------------------- export
def export_bundle(bundle: Bundle, *, quantize: str = "int8", target: str = "cpu",
                  labelled: tuple[NDArray[np.float32], NDArray[Any]] | None = None,
                  gate: Gate = Gate(), force: bool = False, keras_model: Any = None,
                  all_validation_windows: NDArray[np.float32] | None = None,
                  log: Any = print) -> dict[str, Any]:
    """Add TFLite members to ``bundle`` (in memory) and make the new model its runtime model.

    ``labelled`` is (scaled windows, 0/1 labels) for the ROC-AUC part of the
    gate. Raises :class:`ParityGateError` (exit 2) when the gate fails and not
    ``force``; the bundle is then left as it was.
    """
    if quantize not in QUANTIZATIONS:
        raise ConfigError(f"--quantize {quantize!r} is unknown; use one of {', '.join(QUANTIZATIONS)}")
    if target not in TARGETS:
        raise ConfigError(f"--target {target!r} is unknown; use one of {', '.join(TARGETS)}")
    if target == "edgetpu" and quantize != "int8":
        raise ConfigError(f"--target edgetpu needs --quantize int8 (got {quantize!r}): the Edge TPU runs full-integer models only")
    if target == "gpu" and quantize == "int8":
        quantize = "float16"  # the GPU delegate runs float models; float16 halves the size
    model = keras_model if keras_model is not None else keras_from_bundle(bundle)
    ref = bundle.read_arrays("reference_windows.npz")
    # Normal windows alone set activation ranges that anomalous windows
    # overflow, and clipped reconstructions move scores near the threshold.
    # The same windows at twice the amplitude widen every range enough
    # (C-MAPSS dense: decision agreement 0.950 -> 0.996) at little cost in
    # resolution.
    representative = np.concatenate([ref["representative"], 2.0 * ref["representative"]]).astype(np.float32)
    normal = all_validation_windows if all_validation_windows is not None else ref["validation"]
    normal = normal.astype(np.float32)
    config = ScoreConfig.from_manifest(bundle.manifest["score"])
    threshold_method = bundle.manifest["threshold"].get("calibrated_with", "percentile:99.5")

    members: dict[str, bytes] = {"model_float32.tflite": _convert(model, bundle, "float32", representative)}
    name = f"model_{quantize}.tflite"
    if quantize != "float32":
        members[name] = _convert(model, bundle, quantize, representative)
    details: dict[str, Any] = {}
    scores: dict[str, NDArray[np.float64]] = {}
    check = normal if labelled is None else np.concatenate([normal, labelled[0].astype(np.float32)])
    for member, data in members.items():
        tfl, ops = _ops(data, f"{bundle.path or 'bundle'}:{member}")
        prec = member.removeprefix("model_").removesuffix(".tflite")
        details[member] = {"precision": prec, "target": "cpu", **tfl.tensor_details(), "ops": ops, "size": len(data)}
        scores[member] = anomaly_scores(check, *tfl.predict(check), config)
        log(f"  {member}: {len(data) / 1024:.1f} KiB, ops: {', '.join(sorted(set(ops)))}")

    figures = parity_figures(scores["model_float32.tflite"], scores[name], len(normal),
                             labelled[1] if labelled is not None else None, threshold_method)
    failures = []
    if figures["decision_agreement"] < gate.min_agreement:
        failures.append(f"decision agreement {figures['decision_agreement']:.4f} < {gate.min_agreement}")
    if "roc_auc_drop" in figures and figures["roc_auc_drop"] > gate.max_auc_drop:
        failures.append(f"ROC-AUC drop {figures['roc_auc_drop']:.4f} > {gate.max_auc_drop}")
    figures.update(passed=not failures, forced=bool(failures and force), failures=failures,
                   model=name, reference="model_float32.tflite",
                   gate={"max_auc_drop": gate.max_auc_drop, "min_agreement": gate.min_agreement})
    summary = ", ".join(f"{k}={figures[k]}" for k in ("spearman", "relative_error_median", "decision_agreement", "roc_auc_drop") if k in figures)
    log(f"  parity {name} vs float32: {summary}")
    if failures and not force:
        raise ParityGateError(
            f"{name} fails the parity gate ({'; '.join(failures)}; {summary}); "
            "try --quantize float16, more representative data, or --force to accept it"
        )

    for member, data in members.items():
        bundle.put(member, data)
    if quantize == "int8" and target != "edgetpu" and bundle.has(EDGETPU_MEMBER):
        # Compiled from the int8 model this export just replaced.
        bundle.remove(EDGETPU_MEMBER)
        bundle.manifest.get("models", {}).pop(EDGETPU_MEMBER, None)
        log(f"  removed {EDGETPU_MEMBER}: it was compiled from the previous int8 model; re-run with --target edgetpu")
    models = bundle.manifest.setdefault("models", {})
    models.update(details)
    if target == "edgetpu":
        details[name]["edgetpu"] = _edgetpu(bundle, name, details[name], log)
    elif quantize == "int8":
        details[name]["edgetpu"] = edgetpu_report(details[name]["ops"], details[name]["input"]["dtype"])
    if target == "gpu":
        details[name]["target"] = "gpu"
    n_normal = len(normal)
    new_scores = scores[name][:n_normal]
    threshold = figures["threshold_recalibrated"]
    th = bundle.manifest["threshold"]
    if th.get("set_by") == "operator":
        # An engineer chose this value (see the audit log); a re-export must not undo it.
        log(f"  kept the operator's threshold {th['value']:.6g} ({th.get('method')}); "
            f"recalibrated on {name} it would be {threshold:.6g}: see 'edgewatch threshold'")
    else:
        th.setdefault("history", []).append({"value": th.get("value"), "method": th.get("method"), "scores_from": th.get("scores_from")})
        th.update(value=threshold, method=threshold_method, scores_from=name, calibrated_with=threshold_method)
    bundle.manifest["calibration"] = {"scores": [float(f"{s:.6g}") for s in new_scores], "model": name,
                                      "windows": n_normal}
    bundle.manifest["runtime"] = {"model": name}
    bundle.manifest.setdefault("parity", {})[name] = figures
    return figures


def _edgetpu(bundle: Bundle, name: str, detail: dict[str, Any], log: Any) -> dict[str, Any]:
    report = edgetpu_report(detail["ops"], detail["input"]["dtype"])
    compiler = shutil.which("edgetpu_compiler")
    if compiler is None:
        report["compiled"] = False
        where = bundle.path or "BUNDLE"
        report["command"] = f"edgewatch export {where} --target edgetpu"
        log(f"  edgetpu_compiler is not on PATH, so no {EDGETPU_MEMBER} was added; on a machine with the "
            f"Edge TPU compiler (x86-64 Debian/Ubuntu, package edgetpu-compiler) run: {report['command']}")
        return report
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / name
        src.write_bytes(bundle.read(name))
        proc = subprocess.run([compiler, "-s", "-o", tmp, str(src)], capture_output=True, text=True, check=False)
        out = Path(tmp) / name.replace(".tflite", "_edgetpu.tflite")
        report["compiler_log"] = proc.stdout[-4000:]
        if proc.returncode != 0 or not out.exists():
            raise ConverterError(f"edgetpu_compiler failed on {name}: {proc.stderr.strip()[:300]}")
        bundle.put(EDGETPU_MEMBER, out.read_bytes())
    report["compiled"] = True
    return report
