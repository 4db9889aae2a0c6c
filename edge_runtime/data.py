"""Reading sensor tables: CSV with a header row, and NASA C-MAPSS whitespace files.

Numpy only, so the gateway's replay and ``edgewatch score`` read files the same
way the trainer does. Every problem is a :class:`DataError` naming the file,
the column or row, and what to do.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from numpy.typing import NDArray

from edge_runtime.errors import DataError
from edge_runtime.windows import resegment

__all__ = ["SensorTable", "load_table", "parse_units", "CMAPSS_SENSORS", "concat_tables"]

#: The 14 informative FD001 sensors (the others are constant).
CMAPSS_SENSORS = ("s2", "s3", "s4", "s7", "s8", "s9", "s11", "s12", "s13", "s14", "s15", "s17", "s20", "s21")
_CMAPSS_COLUMNS = ("unit", "cycle", "os1", "os2", "os3", *(f"s{i}" for i in range(1, 22)))
#: Benchmark framing (shared/data/cmapss/README.md): anomalous at RUL <= 60, healthy above 125.
CMAPSS_ANOMALOUS_RUL = 60
CMAPSS_HEALTHY_RUL = 125
_TIME_NAMES = ("time", "timestamp")
_MISSING = ("", "nan", "na", "n/a", "null", "none")


@dataclass(frozen=True)
class SensorTable:
    """Rows of sensor readings, in file order.

    ``segments`` marks rows that belong together (one engine, one file, one
    unbroken run); windows never cross a change of segment. ``labels`` is
    1 for anomalous, 0 for normal and NaN where unknown. ``categories`` holds
    the raw text of the columns read with ``categorical=`` (CSV only), one
    array of strings per column; they are not in ``values`` until encoded
    (:mod:`edge_runtime.categorical`).
    """

    source: str
    columns: tuple[str, ...]
    values: NDArray[np.float64]
    segments: NDArray[np.int64]
    time: tuple[str, ...] | None = None
    labels: NDArray[np.float64] | None = None
    extra: dict[str, NDArray[Any]] = field(default_factory=dict)
    sample_rate_hz: float | None = None
    categories: dict[str, NDArray[np.str_]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.values)

    def select(self, mask: NDArray[np.bool_]) -> SensorTable:
        """Keep the rows where ``mask`` is true; dropped rows split segments."""
        mask = np.asarray(mask, dtype=bool)
        idx = np.flatnonzero(mask)
        if len(idx) == 0:
            return replace(self, values=self.values[:0], segments=self.segments[:0],
                           time=() if self.time is not None else None,
                           labels=self.labels[:0] if self.labels is not None else None,
                           extra={k: v[:0] for k, v in self.extra.items()},
                           categories={k: v[:0] for k, v in self.categories.items()})
        return replace(
            self,
            values=self.values[idx],
            segments=resegment(self.segments, mask),
            time=tuple(self.time[i] for i in idx) if self.time is not None else None,
            labels=self.labels[idx] if self.labels is not None else None,
            extra={k: v[idx] for k, v in self.extra.items()},
            categories={k: v[idx] for k, v in self.categories.items()},
        )

    def fingerprint(self) -> str:
        """sha256 of the values the model sees (order, channels and numbers)."""
        h = hashlib.sha256(",".join(self.columns).encode())
        h.update(np.ascontiguousarray(self.values, dtype=np.float64).tobytes())
        return h.hexdigest()


def parse_units(text: str) -> set[int]:
    """``"1-80,85,90-92"`` -> {1..80, 85, 90, 91, 92}."""
    units: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if sep else a
        except ValueError:
            raise DataError(f"--units {text!r}: {part!r} is not a number or range like 1-80") from None
        if b < a:
            raise DataError(f"--units {text!r}: range {part!r} runs backwards; write it as {b}-{a}")
        units.update(range(a, b + 1))
    if not units:
        raise DataError(f"--units {text!r} selects no units; give ids or ranges like 1-80")
    return units


def load_table(
    path: str | os.PathLike[str],
    *,
    format: str = "auto",
    columns: Sequence[str] | None = None,
    time_column: str | None = None,
    label_column: str | None = None,
    units: str | None = None,
    categorical: Sequence[str] | None = None,
    columns_from: str = "--columns",
) -> SensorTable:
    """Read one data file.

    ``columns_from`` says where ``columns`` came from, for error messages
    (``"the bundle"`` when a command reads the columns a model expects).

    ``format`` is ``csv``, ``cmapss`` or ``auto`` (C-MAPSS if the name looks
    like ``train_FD001.txt`` or the first line is 26 numbers, else CSV).
    ``categorical`` names CSV columns read as text into ``table.categories``;
    without ``columns`` they are left out of the numeric columns.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such data file; check the path")
    if format == "auto":
        format = _sniff(path)
    if format == "cmapss":
        if categorical:
            raise DataError(f"{path}: --categorical applies to CSV files only; C-MAPSS columns are all numeric: drop --categorical")
        table = _read_cmapss(path, columns, label_column, units, columns_from)
    elif format == "csv":
        if units is not None:
            raise DataError(f"{path}: --units applies to C-MAPSS files only; in a CSV, a 'unit' column separates machines: drop --units")
        table = _read_csv(path, columns, time_column, label_column, tuple(categorical or ()), columns_from)
    else:
        raise DataError(f"--format {format!r} is unknown; use csv, cmapss or auto")
    if len(table) == 0:
        raise DataError(f"{path}: no data rows; give a file with a header row and at least one window of rows")
    return table


def concat_tables(tables: Sequence[SensorTable]) -> SensorTable:
    """Several files as one table; each file keeps its own segments."""
    if len(tables) == 1:
        return tables[0]
    first = tables[0]
    for t in tables[1:]:
        if t.columns != first.columns:
            raise DataError(f"{t.source}: columns {list(t.columns)} differ from {first.source}'s {list(first.columns)}; pass --columns to pick the same ones")
    offset = 0
    segs = []
    for t in tables:
        segs.append(t.segments + offset)
        offset += int(t.segments.max()) + 1 if len(t) else 0
    labels = None
    if all(t.labels is not None for t in tables):
        labels = np.concatenate([t.labels for t in tables])  # type: ignore[misc]
    extra_keys = set.intersection(*(set(t.extra) for t in tables))
    for t in tables[1:]:
        if set(t.categories) != set(first.categories):
            raise DataError(f"{t.source}: categorical columns {sorted(t.categories)} differ from {first.source}'s {sorted(first.categories)}; pass the same --categorical")
    return SensorTable(
        source=" + ".join(t.source for t in tables),
        columns=first.columns,
        values=np.concatenate([t.values for t in tables]),
        segments=np.concatenate(segs),
        time=None,
        labels=labels,
        extra={k: np.concatenate([t.extra[k] for t in tables]) for k in extra_keys},
        sample_rate_hz=first.sample_rate_hz,
        categories={k: np.concatenate([t.categories[k] for t in tables]) for k in first.categories},
    )


def _sniff(path: Path) -> str:
    if path.suffix.lower() == ".csv":
        return "csv"
    with path.open("r", errors="replace") as fh:
        first = fh.readline().split()
    try:
        [float(v) for v in first]
        return "cmapss" if len(first) == len(_CMAPSS_COLUMNS) else "csv"
    except ValueError:
        return "csv"


def _check_finite(path: Path, name: str, col: NDArray[np.float64], first_row: int) -> None:
    bad = np.flatnonzero(~np.isfinite(col))
    if len(bad):
        raise DataError(
            f"{path}: column {name!r} row {int(bad[0]) + first_row} is {float(col[bad[0]])!r}; "
            "clean or interpolate missing values before training or scoring"
        )


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _to_float(path: Path, name: str, cells: Sequence[str], first_row: int) -> NDArray[np.float64]:
    if cells and all(c.strip().lower() in _MISSING for c in cells):
        raise DataError(
            f"{path}: column {name!r} is empty or NaN in all {len(cells)} rows; "
            "leave it out of --columns or fill it in"
        )
    try:
        col = np.asarray(cells, dtype=np.float64)
    except ValueError:
        for i, cell in enumerate(cells):
            if not _is_number(cell):
                hint = (" (it holds text in every row: if these are categories, pass --categorical "
                        f"{name})" if not any(_is_number(c) for c in cells) else "")
                raise DataError(
                    f"{path}: column {name!r} row {i + first_row} has {cell!r}, which is not a number; "
                    f"fix the cell or leave the column out of --columns{hint}"
                ) from None
        raise  # pragma: no cover - numpy and float() disagree
    _check_finite(path, name, col, first_row)
    return col


def _read_csv(path: Path, columns: Sequence[str] | None, time_column: str | None,
              label_column: str | None, categorical: tuple[str, ...] = (), columns_from: str = "--columns") -> SensorTable:
    with path.open(newline="", errors="replace") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DataError(f"{path}: the file is empty; give a CSV with a header row and data rows") from None
        rows = list(reader)
    while rows and not rows[-1]:  # trailing blank lines are common and harmless
        rows.pop()
    if not header or all(h == "" for h in header):
        raise DataError(f"{path}: the header row is empty; the first line must name the columns")
    index = {name: i for i, name in enumerate(header)}
    for i, r in enumerate(rows):
        # Row numbers in messages are file line numbers, so blank lines inside
        # the data are refused rather than silently dropped and miscounted.
        if not r:
            raise DataError(f"{path}: row {i + 2} is blank; remove blank lines between data rows")
        if len(r) != len(header):
            raise DataError(f"{path}: row {i + 2} has {len(r)} cells but the header has {len(header)}; fix the row")

    def need(name: str, flag: str) -> int:
        if name not in index:
            raise DataError(f"{path}: column {name!r} (from {flag}) not found; the header has: {', '.join(header)}")
        return index[name]

    if time_column is None:
        time_column = next((h for h in header if h.lower() in _TIME_NAMES), None)
    elif time_column not in index:
        need(time_column, "--time-column")
    if label_column is not None:
        need(label_column, "--labels")
    reserved = {time_column, label_column, "label", "unit"}
    for c in categorical:
        need(c, "--categorical")
        if c in reserved:
            raise DataError(f"{path}: column {c!r} in --categorical is the time, label or unit column; leave it out of --categorical")
    if columns is None:
        columns = [h for h in header if h not in reserved and h not in categorical]
        if not columns and not categorical:
            raise DataError(f"{path}: no feature columns left after the time/label columns; pass --columns")
    else:
        for c in columns:
            need(c, columns_from)
            if c in categorical:
                raise DataError(f"{path}: column {c!r} is in both --columns and --categorical; list it in one of them")
    cells_by_col = list(zip(*rows)) if rows else [()] * len(header)
    values = (np.column_stack([_to_float(path, c, cells_by_col[index[c]], 2) for c in columns]) if rows and columns
              else np.empty((len(rows), len(columns))))
    time = tuple(cells_by_col[index[time_column]]) if time_column and rows else None
    labels = None
    if label_column is not None and rows:
        labels = _parse_labels(path, label_column, cells_by_col[index[label_column]])
    segments = np.zeros(len(values), dtype=np.int64)
    if "unit" in index and rows:
        unit = _to_float(path, "unit", cells_by_col[index["unit"]], 2)
        segments = np.r_[0, np.cumsum(unit[1:] != unit[:-1])].astype(np.int64)
    rate = _rate_from_time(time)
    categories = {c: _to_text(path, c, cells_by_col[index[c]] if rows else (), 2) for c in categorical}
    return SensorTable(str(path), tuple(columns), values, segments, time, labels, {}, rate, categories)


def _to_text(path: Path, name: str, cells: Sequence[str], first_row: int) -> NDArray[np.str_]:
    col = np.asarray([c.strip() for c in cells], dtype=np.str_)
    missing = np.flatnonzero(col == "")  # any text, 'none' or 'nan' included, is a category
    if len(col) and len(missing) == len(col):
        raise DataError(f"{path}: categorical column {name!r} is empty in all {len(col)} rows; leave it out of --categorical")
    if len(missing):
        raise DataError(
            f"{path}: categorical column {name!r} row {int(missing[0]) + first_row} is empty; "
            "give every row a category (write a placeholder such as 'unknown' for missing ones)"
        )
    return col


def _parse_labels(path: Path, name: str, cells: Sequence[str]) -> NDArray[np.float64]:
    out = np.full(len(cells), np.nan)
    for i, cell in enumerate(cells):
        cell = cell.strip().lower()
        if cell in ("", "nan", "na"):
            continue
        if cell in ("1", "1.0", "true", "anomaly", "anomalous", "fault"):
            out[i] = 1.0
        elif cell in ("0", "0.0", "false", "normal", "healthy", "ok"):
            out[i] = 0.0
        else:
            raise DataError(f"{path}: label column {name!r} row {i + 2} has {cell!r}; use 1 for anomalous, 0 for normal, empty if unknown")
    return out


def _rate_from_time(time: tuple[str, ...] | None) -> float | None:
    if not time or len(time) < 3:
        return None
    try:
        t = np.asarray(time[: min(len(time), 10000)], dtype=np.float64)
    except ValueError:
        return None  # timestamps such as ISO strings: rate unknown unless configured
    dt = np.diff(t)
    step = float(np.median(dt)) if len(dt) else 0.0
    return round(1.0 / step, 6) if step > 0 else None


def _read_cmapss(path: Path, columns: Sequence[str] | None, label_column: str | None,
                 units: str | None, columns_from: str = "--columns") -> SensorTable:
    try:
        raw = np.loadtxt(path, ndmin=2)
    except ValueError as err:
        raise DataError(f"{path}: not a C-MAPSS file ({err}); expected 26 whitespace-separated numbers per row, or pass --format csv") from None
    if raw.size == 0:
        raise DataError(f"{path}: the file is empty")
    if raw.shape[1] != len(_CMAPSS_COLUMNS):
        raise DataError(f"{path}: C-MAPSS rows have 26 columns, this file has {raw.shape[1]}; pass --format csv for other files")
    unit = raw[:, 0].astype(np.int64)
    cycle = raw[:, 1].astype(np.int64)
    if units is not None:
        wanted = parse_units(units)
        keep = np.isin(unit, sorted(wanted))
        if not keep.any():
            raise DataError(f"{path}: --units {units!r} matches none of the units in the file ({unit.min()}-{unit.max()})")
        raw, unit, cycle = raw[keep], unit[keep], cycle[keep]
    names = list(columns) if columns is not None else list(CMAPSS_SENSORS)
    col_index = {n: i for i, n in enumerate(_CMAPSS_COLUMNS)}
    for n in names:
        if n not in col_index:
            raise DataError(f"{path}: column {n!r} (from {columns_from}) is not a C-MAPSS column; use names from: {', '.join(_CMAPSS_COLUMNS)}")
    values = raw[:, [col_index[n] for n in names]]
    for j, n in enumerate(names):
        _check_finite(path, n, values[:, j], 1)
    last = {u: cycle[unit == u].max() for u in np.unique(unit)}
    rul = np.array([last[u] - c for u, c in zip(unit, cycle)], dtype=np.int64)
    label = np.where(rul <= CMAPSS_ANOMALOUS_RUL, 1.0, np.where(rul > CMAPSS_HEALTHY_RUL, 0.0, np.nan))
    extra = {"unit": unit, "cycle": cycle, "rul": rul, "label": label}
    labels = None
    if label_column is not None:
        if label_column not in extra:
            raise DataError(f"{path}: --labels {label_column!r}: C-MAPSS files offer 'label' (benchmark framing) or 'rul'")
        labels = label if label_column == "label" else extra[label_column].astype(np.float64)
    segments = np.r_[0, np.cumsum(unit[1:] != unit[:-1])].astype(np.int64)
    time = tuple(str(c) for c in cycle)
    return SensorTable(str(path), tuple(names), values, segments, time, labels, extra, None)
