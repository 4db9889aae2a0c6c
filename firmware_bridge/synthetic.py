"""Synthetic rotating-machine data: three vibration axes and motor current.

Standard library only (``math``, ``random``) and fully determined by ``seed``,
because the simulator, the trainer and the demo all use it and must agree.

The healthy machine is a shaft at 24.6 Hz with 1x/2x/3x harmonics, broadband
noise and a slight current ripple. A fault starts at ``fault_start`` (a
fraction of the series) and grows linearly to full severity at the end:

- ``bearing``: an outer-race defect, an impulse train at 3.58x shaft speed,
  each impulse ringing a structural resonance (3 kHz, or 0.35 x rate when the
  rate is too low to carry 3 kHz) that decays within about a millisecond;
- ``imbalance``: a growing 1x component, strongest in the radial axes, and
  a matching current modulation;
- ``looseness``: a half-order sub-harmonic and many harmonics of the shaft,
  with the response clipped as parts knock against their stops.
"""

from __future__ import annotations

import math
import os
import random
import tempfile
from dataclasses import dataclass

__all__ = ["SyntheticSeries", "generate", "write_csv", "FAULTS", "COLUMNS", "UNITS", "SHAFT_HZ"]

COLUMNS = ("vib_x", "vib_y", "vib_z", "current")
UNITS = ("g", "g", "g", "A")
FAULTS = ("bearing", "imbalance", "looseness")
SHAFT_HZ = 24.6
BPFO_ORDER = 3.58  # outer-race defect frequency / shaft frequency, a typical deep-groove value
_TWO_PI = 2.0 * math.pi


@dataclass(frozen=True)
class SyntheticSeries:
    """A generated series.

    Attributes
    ----------
    columns, units : tuple of str
        ``("vib_x", "vib_y", "vib_z", "current")`` and ``("g", "g", "g", "A")``.
    rate_hz : float
        Sample rate.
    rows : list of tuple of float
        One tuple per sample, in column order.
    labels : list of int
        0 while healthy, 1 from the sample at which the fault starts.
    """

    columns: tuple[str, ...]
    units: tuple[str, ...]
    rate_hz: float
    rows: list[tuple[float, ...]]
    labels: list[int]


def _check(seconds: float, rate_hz: float, fault: str | None, fault_start: float) -> None:
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"seconds must be a positive number (got {seconds!r})")
    if not (isinstance(rate_hz, (int, float)) and math.isfinite(rate_hz) and rate_hz >= 2 * 3 * SHAFT_HZ):
        raise ValueError(f"rate_hz must be at least {2 * 3 * SHAFT_HZ:g} Hz to carry the 3x shaft harmonic (got {rate_hz!r})")
    if fault is not None and fault not in FAULTS:
        raise ValueError(f"fault must be one of {FAULTS!r} or None (got {fault!r})")
    if not 0.0 <= fault_start <= 1.0:
        raise ValueError(f"fault_start must be a fraction in [0, 1] (got {fault_start!r})")


def generate(
    seconds: float,
    rate_hz: float = 1000.0,
    fault: str | None = None,
    fault_start: float = 0.6,
    seed: int = 0,
) -> SyntheticSeries:
    """Generate ``seconds`` of data at ``rate_hz``.

    Parameters
    ----------
    seconds : float
        Duration; the series has ``round(seconds * rate_hz)`` samples.
    rate_hz : float
        Sample rate in Hz (at least 147.6, twice the 3x harmonic).
    fault : {"bearing", "imbalance", "looseness"} or None
        Fault to inject, or None for a healthy machine.
    fault_start : float
        Fraction of the series at which the fault begins.
    seed : int
        Seed of the noise and of the small random variations; same seed, same data.

    Examples
    --------
    >>> s = generate(1.0, 1000.0, fault="bearing", seed=1)
    >>> len(s.rows), s.columns[0], s.labels[-1]
    (1000, 'vib_x', 1)
    """
    _check(seconds, rate_hz, fault, fault_start)
    rng = random.Random(seed)
    gauss = rng.gauss
    n = max(1, round(seconds * rate_hz))
    dt = 1.0 / rate_hz
    start = round(fault_start * n) if fault else n
    # Per-machine variation, drawn once so a seed is a machine.
    shaft = SHAFT_HZ * (1.0 + rng.uniform(-0.01, 0.01))
    ph = [rng.uniform(0, _TWO_PI) for _ in range(6)]
    w = _TWO_PI * shaft
    res_hz = min(3000.0, 0.35 * rate_hz)
    res_w = _TWO_PI * res_hz
    decay = 1.0 / max(0.0008, 4.0 / rate_hz)  # at least a few samples of ringing
    bpfo_period = 1.0 / (BPFO_ORDER * shaft)
    next_impulse = start * dt
    impulse_t = -1e9
    impulse_amp = 0.0
    rows: list[tuple[float, ...]] = []
    append = rows.append
    sin = math.sin
    exp = math.exp
    span = max(1, n - start)
    for i in range(n):
        t = i * dt
        th = w * t
        s1 = sin(th + ph[0])
        s2 = sin(2.0 * th + ph[1])
        s3 = sin(3.0 * th + ph[2])
        c1 = sin(th + ph[0] + 1.5707963267948966)
        x = 0.05 * s1 + 0.02 * s2 + 0.01 * s3 + gauss(0.0, 0.01)
        y = 0.05 * c1 + 0.015 * s2 + 0.008 * s3 + gauss(0.0, 0.01)
        z = 0.02 * s1 + 0.01 * s3 + gauss(0.0, 0.008)
        cur = 4.0 + 0.03 * s1 + 0.02 * sin(_TWO_PI * 100.0 * t + ph[3]) + gauss(0.0, 0.01)
        if i >= start:
            sev = 0.2 + 0.8 * (i - start) / span
            if fault == "bearing":
                if t >= next_impulse:
                    impulse_t = next_impulse
                    impulse_amp = sev * rng.uniform(0.6, 1.0)
                    # Rolling elements slip a little: the period jitters by ~1%.
                    next_impulse += bpfo_period * (1.0 + rng.uniform(-0.01, 0.01))
                tau = t - impulse_t
                ring = impulse_amp * exp(-decay * tau) * sin(res_w * tau)
                x += 0.6 * ring
                y += 0.4 * ring
                z += 0.8 * ring
            elif fault == "imbalance":
                x += 0.25 * sev * s1
                y += 0.25 * sev * c1
                cur += 0.08 * sev * s1
            else:  # looseness
                loose = 0.06 * sev * sin(0.5 * th + ph[4])
                for k in range(2, 11):
                    loose += 0.04 * sev / k * sin(k * th + ph[5] * k)
                x += loose
                y += 0.7 * loose
                lim = 0.2 - 0.1 * sev  # the gap closes as the fit loosens further
                x = lim if x > lim else (-lim if x < -lim else x)
                y = lim if y > lim else (-lim if y < -lim else y)
                cur += 0.02 * sev * sin(0.5 * th + ph[4])
        append((x, y, z, cur))
    labels = [0] * start + [1] * (n - start) if fault else [0] * n
    return SyntheticSeries(COLUMNS, UNITS, float(rate_hz), rows, labels)


def write_csv(series: SyntheticSeries, path: str | os.PathLike[str]) -> None:
    """Write ``time,<columns>,label`` with ``repr`` floats (exact round trip).

    Written to a temporary file in the same directory and moved into place,
    so a reader never sees half a file.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".synth-", suffix=".csv", dir=directory)
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(",".join(("time", *series.columns, "label")) + "\n")
            rate = series.rate_hz
            lines = [
                f"{i / rate!r},{','.join(map(repr, row))},{label}\n"
                for i, (row, label) in enumerate(zip(series.rows, series.labels))
            ]
            f.writelines(lines)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
