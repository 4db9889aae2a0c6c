"""Regenerate frames.json from the Python encoder: python tests/vectors/make_frames.py

The C golden program (firmware_bridge/firmware/test/golden.c) builds the same
cases; tests/test_firmware_c.py checks that both produce exactly these bytes.
Only regenerate after a deliberate protocol change, and bump the version then.
"""

from __future__ import annotations

import json
import pathlib
import struct

from firmware_bridge import _cobs
from firmware_bridge.protocol import SampleFormat, encode_heartbeat, encode_hello, encode_samples

I16 = [0, -1, 32767, -32768, 256, 1, 255, -256, 12, 0, 0, 7]
F32 = [1.5, -2.25, 0.0, 0.001, 3.14159, 100.0]


def f32(x: float) -> float:
    """The value a C float holds for ``x``."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def cases() -> dict[str, dict]:
    """name -> {"hex": wire bytes, "kind": ..., plus what decoding must give}."""
    hello = dict(
        device_id="adxl345-1", firmware="1.0.0", channels=["ax", "ay", "az"], units=["g", "g", "g"],
        sample_rate_hz=1600.0, scales=[0.0039] * 3, boot_id=0x12345678, sample_format=1,
    )
    out = {
        "heartbeat_zero": {"kind": "heartbeat", "seq": 0, "time_us": 0, "wire": encode_heartbeat(0, 0)},
        "heartbeat_wrap": {"kind": "heartbeat", "seq": 65535, "time_us": (1 << 40) + 5,
                           "wire": encode_heartbeat(65535, (1 << 40) + 5)},
        "hello_adxl345": {"kind": "hello", "seq": 0, "time_us": 1000, "hello": hello,
                          "wire": encode_hello(0, 1000, **hello)},
        "samples_i16": {"kind": "samples", "seq": 1, "time_us": 2000, "format": 1,
                        "rows": [I16[i:i + 3] for i in range(0, 12, 3)],
                        "wire": encode_samples(1, 2000, [I16[i:i + 3] for i in range(0, 12, 3)])},
        "samples_f32": {"kind": "samples", "seq": 2, "time_us": 3000, "format": 2,
                        "rows": [[f32(F32[i]), f32(F32[i + 1])] for i in range(0, 6, 2)],
                        "wire": encode_samples(2, 3000, [F32[i:i + 2] for i in range(0, 6, 2)],
                                               sample_format=SampleFormat.FLOAT32)},
        "samples_i16_long": {"kind": "samples", "seq": 3, "time_us": 4000, "format": 1,
                             "rows": [[(i + 1) * 257 - (65536 if (i + 1) * 257 > 32767 else 0)] for i in range(200)],
                             "wire": None},
        "cobs_254_ones": {"kind": "cobs", "data_hex": "01" * 254, "wire": _cobs.encode(b"\x01" * 254)},
        "cobs_255_ones": {"kind": "cobs", "data_hex": "01" * 255, "wire": _cobs.encode(b"\x01" * 255)},
    }
    long = out["samples_i16_long"]
    long["wire"] = encode_samples(3, 4000, long["rows"])
    for case in out.values():
        case["hex"] = case.pop("wire").hex()
    return out


if __name__ == "__main__":
    path = pathlib.Path(__file__).with_name("frames.json")
    path.write_text(json.dumps(cases(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {path}")
