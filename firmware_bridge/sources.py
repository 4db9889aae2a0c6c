"""Data sources the simulator can play: a CSV file, C-MAPSS, or synthetic data."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

from firmware_bridge import synthetic
from firmware_bridge.errors import SourceError

__all__ = ["Source", "load_source", "load_csv", "load_cmapss", "CMAPSS_SENSORS", "EXCLUDED_COLUMNS"]

#: The 14 informative FD001 sensors (see /work/shared/data/cmapss/README.md).
CMAPSS_SENSORS = ("s2", "s3", "s4", "s7", "s8", "s9", "s11", "s12", "s13", "s14", "s15", "s17", "s20", "s21")
_CMAPSS_COLUMNS = ("unit", "cycle", "os1", "os2", "os3", *(f"s{i}" for i in range(1, 22)))
#: CSV columns that describe rows rather than measure anything.
EXCLUDED_COLUMNS = ("time", "label")


@dataclass(frozen=True)
class Source:
    """Rows to play, with what the HELLO frame says about them.

    Attributes
    ----------
    name : str
        Where the rows came from (for logs).
    channels, units : tuple of str
    rate_hz : float
    rows : sequence of tuple of float
    exact : bool
        True for recorded data, which the simulator then sends as floats
        (bit-for-bit float32 by default) rather than quantized int16.
    """

    name: str
    channels: tuple[str, ...]
    units: tuple[str, ...]
    rate_hz: float
    rows: Sequence[tuple[float, ...]]
    exact: bool


def _positive(rate: float | None, what: str) -> float | None:
    if rate is not None and not (math.isfinite(rate) and rate > 0):
        raise SourceError(f"{what} must be a positive number of Hz (got {rate!r}); pass e.g. --rate 100")
    return rate


def load_csv(path: str, *, rate_hz: float | None = None, columns: Sequence[str] | None = None) -> Source:
    """Read a CSV with a header row; every column but ``time``/``label`` is a channel.

    The rate is ``rate_hz`` if given, else derived from a regular ``time``
    column; without either the rate is unknown and a :class:`SourceError` says
    to pass ``--rate``.
    """
    _positive(rate_hz, "rate")
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as err:
        raise SourceError(f"cannot read CSV source {path!r}: {err.strerror}; check the path") from err
    if not lines:
        raise SourceError(f"CSV source {path!r} is empty; it needs a header row and data rows")
    header = [h.strip() for h in lines[0].split(",")]
    chosen = list(columns) if columns else [h for h in header if h.lower() not in EXCLUDED_COLUMNS]
    for c in chosen:
        if c not in header:
            raise SourceError(f"column {c!r} is not in {path!r}; available columns: {', '.join(header)}")
    if not chosen:
        raise SourceError(f"CSV source {path!r} has no data columns besides {EXCLUDED_COLUMNS!r}")
    idx = [header.index(c) for c in chosen]
    t_idx = header.index("time") if "time" in header else None
    rows: list[tuple[float, ...]] = []
    times: list[float] = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.split(",")
        try:
            rows.append(tuple(float(cells[i]) for i in idx))
            if t_idx is not None and len(times) < 2:
                times.append(float(cells[t_idx]))
        except (ValueError, IndexError) as err:
            raise SourceError(f"{path!r} line {lineno}: {line[:60]!r} is not numeric in every chosen column; fix or drop that row") from err
    if not rows:
        raise SourceError(f"CSV source {path!r} has a header but no data rows")
    if rate_hz is None and len(times) == 2 and times[1] > times[0]:
        rate_hz = 1.0 / (times[1] - times[0])
    if rate_hz is None:
        raise SourceError(f"the sample rate of {path!r} is unknown (no regular 'time' column); pass --rate HZ")
    return Source(os.path.basename(path), tuple(chosen), ("",) * len(chosen), float(rate_hz), rows, True)


def load_cmapss(path: str, *, rate_hz: float | None = None) -> Source:
    """Read C-MAPSS (whitespace separated, 26 columns) and keep the 14 informative sensors.

    One row is one engine cycle; rows are played in file order, engine after
    engine. ``rate_hz`` defaults to 10 cycles per second.
    """
    _positive(rate_hz, "rate")
    keep = [_CMAPSS_COLUMNS.index(s) for s in CMAPSS_SENSORS]
    rows: list[tuple[float, ...]] = []
    try:
        with open(path, encoding="ascii") as f:
            for lineno, line in enumerate(f, start=1):
                cells = line.split()
                if not cells:
                    continue
                if len(cells) != len(_CMAPSS_COLUMNS):
                    raise SourceError(
                        f"{path!r} line {lineno} has {len(cells)} columns, C-MAPSS has {len(_CMAPSS_COLUMNS)}; "
                        "is this a train_FD00x.txt file?"
                    )
                rows.append(tuple(float(cells[i]) for i in keep))
    except OSError as err:
        raise SourceError(f"cannot read C-MAPSS source {path!r}: {err.strerror}; check the path") from err
    except (ValueError, UnicodeDecodeError) as err:
        raise SourceError(f"{path!r} is not C-MAPSS text (a non-numeric cell); check the file") from err
    if not rows:
        raise SourceError(f"C-MAPSS source {path!r} has no rows")
    return Source(os.path.basename(path), CMAPSS_SENSORS, ("",) * len(CMAPSS_SENSORS), float(rate_hz or 10.0), rows, True)


def load_source(
    spec: str,
    *,
    rate_hz: float | None = None,
    seconds: float = 60.0,
    fault: str | None = None,
    fault_start: float = 0.6,
    seed: int = 0,
    columns: Sequence[str] | None = None,
) -> Source:
    """Open a source from its command-line spelling.

    ``"synthetic"``, ``"cmapss:PATH"``, ``"csv:PATH"`` or a plain ``PATH`` to a CSV file.
    """
    if spec == "synthetic":
        try:
            s = synthetic.generate(seconds, _positive(rate_hz, "rate") or 1000.0, fault, fault_start, seed)
        except ValueError as err:
            raise SourceError(str(err)) from err
        return Source("synthetic", s.columns, s.units, s.rate_hz, s.rows, False)
    if spec.startswith("cmapss:"):
        return load_cmapss(spec[len("cmapss:"):], rate_hz=rate_hz)
    if spec.startswith("csv:"):
        spec = spec[len("csv:"):]
    if spec == "cmapss" or not spec:
        raise SourceError(f"source {spec!r} needs a path: use --source cmapss:PATH, --source PATH.csv or --source synthetic")
    return load_csv(spec, rate_hz=rate_hz, columns=columns)
