"""Benchmark of the gateway runtime: replay 10^6 samples x 8 channels through ``edgewatch run``.

    python tools/bench_runtime.py [--samples 1000000] [--bundle B.ewb] [--mqtt mqtt://host:port] [--out results.json]

Without ``--bundle`` it trains a small 8-channel int8 bundle first (needs the
``train`` extra; the runtime process it measures never imports TensorFlow).
Without ``--mqtt`` it starts a private Mosquitto on a free port (loopback).

Reports, for the runtime subprocess only: wall time, CPU time (user+sys),
samples/s and windows/s, samples/s per CPU-second (per core), peak RSS, and
the end-to-end latency from the moment the pipeline takes a window's last
sample to the broker's PUBACK of the event that window caused (p50/p99). In
replay the file is infinitely fast, so the latency clock starts when the
inference thread takes the chunk, not when it was read from disk.

Peak RSS is ``ru_maxrss`` from ``wait4`` on the runtime child. Linux carries
the high-water mark of the address space a child was forked from through
``exec`` into that figure, so this script keeps its own memory small while it
starts the runtime: numpy is imported only after the run, and the replay file
is written by a child process (before this, the 1e6 x 8 arrays of the harness
itself were reported as the runtime's peak: 172.5 MB for a 57 MB process). As
a cross-check it also samples ``VmHWM`` of the child from ``/proc``
(``vm_hwm_mb``) and reports its own ``ru_maxrss`` at the spawn
(``harness_rss_mb``), a floor under ``peak_rss_mb``.

``--markdown tools/results/runtime.md`` writes the table the README quotes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

REPO = Path(__file__).resolve().parents[1]
CHANNELS = [f"ch{i}" for i in range(8)]
RATE = 1000.0


def make_rows(n: int, seed: int, bursts: bool) -> np.ndarray:
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(n) / RATE
    freqs = np.array([5, 7, 11, 13, 17, 19, 23, 29], dtype=np.float64)
    x = np.sin(2 * np.pi * t[:, None] * freqs[None, :] / 10) + rng.normal(0, 0.1, size=(n, 8))
    if bursts:  # an anomaly burst every 4000 samples: events to time
        for start in range(2000, n - 400, 4000):
            x[start:start + 300, start // 4000 % 8] += rng.normal(0, 3.0, size=300)
    return x.astype(np.float32)


def write_csv(path: Path, rows: np.ndarray) -> None:
    import numpy as np

    with open(path, "w") as fh:
        fh.write(",".join(CHANNELS) + "\n")
        np.savetxt(fh, rows, delimiter=",", fmt="%.9g")


def write_replay(path: Path, samples: int) -> None:
    """The replay file: 10^6 x 8 rows with anomaly bursts (run in a child process, see the module doc)."""
    write_csv(path, make_rows(samples, 1, bursts=True))


def _in_child(call: str) -> None:
    subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(REPO)!r}); from pathlib import Path; "
                    f"from tools.bench_runtime import train, write_replay; {call}"], check=True, cwd=REPO)


def _vm_hwm_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def train(tmp: Path) -> Path:
    from trainer.api import train_bundle

    csv = tmp / "train.csv"
    write_csv(csv, make_rows(20000, 0, bursts=False))
    out = tmp / "bench8.ewb"
    train_bundle([str(csv)], out, window=32, stride=8, epochs=5, sample_rate_hz=RATE, model_id="bench8", log=lambda s: None)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--bundle", type=Path)
    ap.add_argument("--mqtt")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    ap.add_argument("--markdown", type=Path, help="also write a markdown table here (tools/results/runtime.md)")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="edgewatch-bench-"))
    bundle = args.bundle
    if bundle is None:
        # Train in a child so this process (and its children's rusage) stays TensorFlow-free.
        _in_child(f"train(Path({str(tmp)!r}))")
        bundle = tmp / "bench8.ewb"
    data = tmp / "replay.csv"
    _in_child(f"write_replay(Path({str(data)!r}), {args.samples})")
    broker = None
    url = args.mqtt
    if url is None:
        sys.path.insert(0, str(REPO))
        from tests.mqtt_broker import MosquittoBroker

        broker = MosquittoBroker(tmp).start()
        url = broker.url
    summary = tmp / "summary.json"
    cmd = [sys.executable, "-m", "tools.cli", "run", "--bundle", str(bundle), "--replay", str(data), "--mqtt", url,
           "--device-id", "bench", "--state-dir", str(tmp / "state"), "--summary", str(summary),
           "--log-level", "warning", "--config", str(_config(tmp))]
    harness_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    load = os.getloadavg()[0]   # the figures are per-core, but a busy machine still moves latency
    hwm_kb = [0]
    try:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"})
        done = threading.Event()

        def watch() -> None:  # VmHWM only grows; the last reading before exit is the cross-check
            while not done.wait(0.05):
                kb = _vm_hwm_kb(proc.pid)
                if kb is not None:
                    hwm_kb[0] = max(hwm_kb[0], kb)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        # wait4 gives the rusage of this one child (not of the training child).
        _, status, usage = os.wait4(proc.pid, 0)
        done.set()
        watcher.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - t0
    finally:
        if broker is not None:
            broker.stop()
    if proc.returncode != 0:
        print(f"runtime exited {proc.returncode}", file=sys.stderr)
        return proc.returncode
    import numpy as np  # only now: this process's peak must stay below the child's (see the module doc)

    s = json.loads(summary.read_text())
    lat = np.asarray(s["end_to_end_ms"], dtype=np.float64)
    cpu = usage.ru_utime + usage.ru_stime
    result: dict[str, Any] = {
        "samples": s["samples"], "channels": 8, "windows": s["windows"], "events": s["events"],
        "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
        "samples_per_s": round(s["samples"] / wall), "windows_per_s": round(s["windows"] / wall),
        "samples_per_cpu_s": round(s["samples"] / cpu),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "vm_hwm_mb": round(hwm_kb[0] / 1024, 1) if hwm_kb[0] else None,
        "harness_rss_mb": round(harness_kb / 1024, 1),
        "event_latency_ms_p50": round(float(np.percentile(lat, 50)), 2) if len(lat) else None,
        "event_latency_ms_p99": round(float(np.percentile(lat, 99)), 2) if len(lat) else None,
        "inference_ms_p50": s["inference_ms_p50"], "inference_ms_p99": s["inference_ms_p99"],
        "delivered": s["delivered"], "events_dropped": s["events_dropped"], "bundle": str(bundle),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_avg_1m_at_start": round(load, 2),
    }
    if harness_kb >= usage.ru_maxrss:
        print(f"warning: peak_rss_mb ({result['peak_rss_mb']}) may be this harness's own peak "
              f"({result['harness_rss_mb']} MB), not the runtime's; see vm_hwm_mb", file=sys.stderr)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(result))
    return 0


def markdown(r: dict[str, Any]) -> str:
    """The README table: one row per figure, units in the first column."""
    rows = [
        ("samples x channels", f"{r['samples']:,} x {r['channels']}"),
        ("windows scored / events published", f"{r['windows']:,} / {r['events']:,} (delivered {r['delivered']:,})"),
        ("wall time (s)", f"{r['wall_s']}"),
        ("CPU time, user+sys (s)", f"{r['cpu_s']}"),
        ("windows/s", f"{r['windows_per_s']:,}"),
        ("samples/s", f"{r['samples_per_s']:,}"),
        ("samples/s per core (per CPU-second)", f"{r['samples_per_cpu_s']:,}"),
        ("peak RSS (MB, ru_maxrss)", f"{r['peak_rss_mb']}"),
        ("event latency p50 / p99 (ms, last sample -> PUBACK)",
         f"{r['event_latency_ms_p50']} / {r['event_latency_ms_p99']}"),
        ("inference p50 / p99 (ms per window)", f"{r['inference_ms_p50']} / {r['inference_ms_p99']}"),
    ]
    lines = ["# Gateway runtime benchmark", "",
             "`python tools/bench_runtime.py --markdown tools/results/runtime.md`: replay of the samples below through",
             "`edgewatch run` (CSV -> windows -> LiteRT int8 model -> alarms -> SQLite outbox -> QoS 1 to a loopback",
             f"Mosquitto). Machine: {r['machine']}; 1-minute load average {r['load_avg_1m_at_start']} at the start.",
             "Peak RSS is the runtime process's own (ru_maxrss of the child, cross-checked against VmHWM:",
             f"{r['vm_hwm_mb']} MB); the target is <= 64 MB.", "",
             "| figure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines) + "\n"


def _config(tmp: Path) -> Path:
    cfg = tmp / "bench.toml"
    cfg.write_text("[alarm]\nk = 2\nn = 3\nm = 3\nflood_limit = 100000\n[queue]\nmax_events = 100000\n")
    return cfg


if __name__ == "__main__":
    sys.exit(main())
