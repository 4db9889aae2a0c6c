"""Edge TPU compatibility of a TFLite op list, without the compiler.

The op set is the Coral "supported operations" table for full-integer models.
The Edge TPU compiler maps ops in execution order and stops at the first op it
cannot map: everything from there on runs on the CPU, which is why the report
says where the graph falls back, not just which ops are unsupported.
"""

from __future__ import annotations

from typing import Any, Sequence

__all__ = ["EDGETPU_OPS", "PARTIAL_OPS", "edgetpu_report"]

EDGETPU_OPS = frozenset({
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "EXPAND_DIMS",
    "FULLY_CONNECTED", "L2_NORMALIZATION", "LOGISTIC", "MAXIMUM", "MAX_POOL_2D", "MEAN",
    "MINIMUM", "MUL", "PACK", "PAD", "PRELU", "QUANTIZE", "REDUCE_MAX", "REDUCE_MIN", "RELU",
    "RELU6", "RELU_N1_TO_1", "RESHAPE", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "RSQRT",
    "SLICE", "SOFTMAX", "SPACE_TO_DEPTH", "SPLIT", "SQUEEZE", "STRIDED_SLICE", "SUB", "SUM",
    "SQUARED_DIFFERENCE", "TANH", "TRANSPOSE",
})
#: Listed as supported, but mapped only in some configurations (measured or reported).
PARTIAL_OPS = {
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "supported only partially; expect parts of the LSTM on the CPU",
    "TRANSPOSE_CONV": "maps unreliably; edgewatch models avoid it",
}


def edgetpu_report(ops: Sequence[str], input_dtype: str) -> dict[str, Any]:
    """Which ops would run on the Edge TPU and where the graph falls back to the CPU."""
    rows = []
    fallback_at: int | None = None
    if input_dtype not in ("int8", "uint8"):
        return {"compatible": False, "on_tpu": 0, "on_cpu": len(ops), "fallback_at": 0,
                "reason": f"the Edge TPU runs full-integer models only; this model's input is {input_dtype}",
                "ops": [{"op": op, "status": "cpu"} for op in ops]}
    for i, op in enumerate(ops):
        if fallback_at is None and op not in EDGETPU_OPS:
            fallback_at = i
        status = "tpu" if fallback_at is None else "cpu"
        note = PARTIAL_OPS.get(op) or ("" if op in EDGETPU_OPS else "not supported by the Edge TPU")
        if fallback_at is not None and i > fallback_at and op in EDGETPU_OPS:
            note = "after the first unsupported op, so on the CPU"
        rows.append({"op": op, "status": status, "note": note})
    on_tpu = sum(r["status"] == "tpu" for r in rows)
    return {
        "compatible": fallback_at is None,
        "on_tpu": on_tpu,
        "on_cpu": len(ops) - on_tpu,
        "fallback_at": fallback_at,
        "reason": "" if fallback_at is None else f"op {ops[fallback_at]} (#{fallback_at}) is not supported; it and all later ops run on the CPU",
        "ops": rows,
    }
