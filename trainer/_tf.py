"""The one place the trainer imports TensorFlow, so the choice of Keras is made once.

We build models with ``tf_keras`` (Keras 2), not Keras 3: with TF 2.21, Keras 3
LSTMs convert to WHILE loops and int8 conversion crashes, while ``tf_keras``
with a fixed batch of 1 gives the fused UNIDIRECTIONAL_SEQUENCE_LSTM op.
"""

from __future__ import annotations

import os
from typing import Any

from edge_runtime.errors import require

_cache: dict[str, Any] = {}


def tf_and_keras() -> tuple[Any, Any]:
    """Import (tensorflow, tf_keras) once, quietly."""
    if "tf" not in _cache:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
        tf = require("tensorflow", "train")
        keras = require("tf_keras", "train")
        _cache["tf"], _cache["keras"] = tf, keras
    return _cache["tf"], _cache["keras"]
