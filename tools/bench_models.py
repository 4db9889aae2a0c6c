"""Model size and single-window latency: int8 / float16 / float32 TFLite (LiteRT) against Keras.

For each model kind, trains briefly on C-MAPSS FD001 (latency and size do not
depend on how well it is trained), exports every precision, and times one
window at a time on one thread, in one run so the ratios are comparable:

* LiteRT ``invoke`` on the int8, float16 and float32 members (gateway path,
  including quantize/dequantize and the score);
* Keras ``model.predict(window)`` -- what many users do -- and a direct
  ``model(window)`` call.

    .venv/bin/python tools/bench_models.py [--models conv,lstm,dense] [--out tools/results]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = REPO / "tools" / "data" / "train_FD001.txt"


def _per_call_us(fn, n: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t0)
    return float(np.median(times)) / 1000.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="conv,lstm,dense")
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--out", default=str(REPO / "tools" / "results"))
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from edge_runtime.bundle import Bundle
    from edge_runtime.scorer import BundleScorer
    from trainer.api import DataSpec, train_bundle
    from trainer.export import export_bundle, keras_from_bundle

    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-models-"))
    for kind in args.models.split(","):
        path = tmp / f"{kind}.ewb"
        train_bundle(DataSpec((str(DATA),), "cmapss", units="1-80", min_rul=125), path, model=kind,
                     window=30, epochs=3, verbose=0, log=lambda _: None)
        bundle = Bundle.load(path)
        export_bundle(bundle, quantize="float16", log=lambda _: None, force=True)
        bundle.save(path)
        bundle = Bundle.load(path)
        window = bundle.read_arrays("reference_windows.npz")["validation"][:1]
        raw = BundleScorer(bundle).scaler.mean + window * BundleScorer(bundle).scaler.scale
        row = {"model": kind, "parameters": bundle.manifest["model"]["parameters"]}
        for member in ("model_int8.tflite", "model_float16.tflite", "model_float32.tflite"):
            scorer = BundleScorer(bundle, member=member, num_threads=1)
            prec = member.split("_")[1].split(".")[0]
            row[f"{prec}_kib"] = round(len(bundle.read(member)) / 1024, 1)
            row[f"{prec}_us"] = round(_per_call_us(lambda: scorer.score_windows(raw), args.calls), 1)
        model = keras_from_bundle(bundle)
        x = window.astype(np.float32)
        row["keras_predict_us"] = round(_per_call_us(lambda: model.predict(x, verbose=0), 50), 1)
        row["keras_call_us"] = round(_per_call_us(lambda: model(x, training=False), 200), 1)
        row["int8_size_ratio"] = round(row["int8_kib"] / row["float32_kib"], 3)
        row["speedup_vs_predict"] = round(row["keras_predict_us"] / row["int8_us"], 1)
        rows.append(row)
        print(json.dumps(row), flush=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "models.json").write_text(json.dumps(rows, indent=1))
    lines = ["| model | parameters | int8 size | float16 size | float32 size | int8 / float32 | int8 µs/window | float16 µs | float32 µs | Keras predict µs | Keras call µs | int8 vs predict |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['parameters']} | {r['int8_kib']} KiB | {r['float16_kib']} KiB | {r['float32_kib']} KiB | "
                     f"{r['int8_size_ratio']:.0%} | {r['int8_us']} | {r['float16_us']} | {r['float32_us']} | "
                     f"{r['keras_predict_us']:.0f} | {r['keras_call_us']:.0f} | {r['speedup_vs_predict']}x |")
    (out / "models.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
