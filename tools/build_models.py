"""Rebuild the ready-made bundles in models/ from data in the repository.

    .venv/bin/python tools/build_models.py

* ``models/cmapss-fd001-conv.ewb``: turbofan, 14 sensors, C-MAPSS FD001 engines
  1-80 healthy cycles, window 30 cycles, residual smoothing 5.
* ``models/pump-vibration-conv.ewb``: a rotating machine (3-axis vibration +
  motor current at 1 kHz) from the synthetic generator (seed 11), window 64,
  threshold 6 sigma above the validation mean.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    from edge_runtime.scoring import ScoreConfig
    from firmware_bridge.synthetic import generate, write_csv
    from trainer.api import DataSpec, train_bundle

    models = REPO / "models"
    cmapss = REPO / "tools" / "data" / "train_FD001.txt"
    if "--pump-only" not in sys.argv:
        train_bundle(DataSpec((str(cmapss),), "cmapss", units="1-80", min_rul=125), models / "cmapss-fd001-conv.ewb",
                     model="conv", window=30, score=ScoreConfig(smooth=5), verbose=0, model_id="cmapss-fd001-conv",
                     check=DataSpec((str(cmapss),), "cmapss", units="81-100", label_column="label"))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "pump.csv"
        series = generate(120, 1000.0, seed=11)
        write_csv(series, data)
        # 500 windows a second: a 99.5th-percentile threshold would see several
        # normal windows over it every second. Six sigma above the validation
        # mean sits above every validation window.
        train_bundle(DataSpec((str(data),)), models / "pump-vibration-conv.ewb", model="conv", window=64, stride=2,
                     threshold_method="sigma:6", verbose=0, model_id="pump-vibration-conv", channel_units=dict(zip(series.columns, series.units)))


if __name__ == "__main__":
    main()
