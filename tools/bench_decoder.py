"""Decoder throughput: decoded sample rows per second on one core.

    python tools/bench_decoder.py [--seconds 3] [--channels 3] [--per-frame 32] [--format int16]

Compares the figure with what a 921600-baud line (8N1: 92160 bytes/s) can
carry in the same framing; the target is at least 10x.
"""

from __future__ import annotations

import argparse
import random
import time

from firmware_bridge.protocol import FrameDecoder, SampleFormat, encode_hello, encode_samples

BAUD_BYTES_PER_S = 921600 / 10  # 8 data bits + start + stop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="minimum measuring time")
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--per-frame", type=int, default=32, help="samples per frame")
    ap.add_argument("--format", choices=["int16", "float32"], default="int16")
    ap.add_argument("--chunk", type=int, default=4096, help="bytes per feed() call (a serial read)")
    args = ap.parse_args()
    fmt = SampleFormat.INT16 if args.format == "int16" else SampleFormat.FLOAT32
    rng = random.Random(0)
    n_ch = args.channels
    hello = encode_hello(0, 0, device_id="bench", firmware="1", channels=[f"c{i}" for i in range(n_ch)],
                         units=["g"] * n_ch, sample_rate_hz=3200.0, scales=[0.0039] * n_ch)
    frames = []
    for seq in range(1, 1001):
        rows = [tuple(rng.randint(-600, 600) if fmt == 1 else rng.uniform(-2, 2) for _ in range(n_ch))
                for _ in range(args.per_frame)]
        frames.append(encode_samples(seq, seq * 10_000, rows, sample_format=fmt))
    stream = b"".join(frames)
    chunks = [stream[k:k + args.chunk] for k in range(0, len(stream), args.chunk)]
    bytes_per_row = len(stream) / (len(frames) * args.per_frame)
    line_rows = BAUD_BYTES_PER_S / bytes_per_row

    dec = FrameDecoder()
    dec.feed(hello)
    rows = 0
    start = time.perf_counter()
    elapsed = 0.0
    while elapsed < args.seconds:
        dec = FrameDecoder()
        dec.feed(hello)
        for c in chunks:
            dec.feed(c)
        rows += dec.stats.samples
        elapsed = time.perf_counter() - start
    assert dec.stats.crc_errors == 0 and dec.stats.lost_frames == 0
    rate = rows / elapsed
    print(f"format {args.format}, {n_ch} channels, {args.per_frame} samples/frame: "
          f"{bytes_per_row:.2f} wire bytes per sample row")
    print(f"decoded {rate:,.0f} sample rows/s ({rate * n_ch:,.0f} values/s, "
          f"{rate * bytes_per_row / 1e6:.2f} MB/s) on one core")
    print(f"a 921600-baud line carries {line_rows:,.0f} rows/s: {rate / line_rows:.1f}x the line rate")


if __name__ == "__main__":
    main()
