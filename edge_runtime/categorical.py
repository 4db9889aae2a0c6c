"""One-hot encoding of categorical columns, fitted on training rows and stored in the bundle.

Numpy only: ``edgewatch score``, ``evaluate`` and ``drift`` encode rows the
same way the trainer did, without scikit-learn. A bundle trained with
``--categorical`` carries::

    categorical   {"columns": ["proto", "service"],
                   "vocabulary": {"proto": ["tcp", "udp"], "service": ["dns", "http"]}}

and its ``channels`` are the numeric channels followed by one 0/1 indicator
per known value, named ``column=value`` in vocabulary order. Indicators are
not standardised (the scaler stores mean 0, scale 1 for them). A value the
vocabulary does not know encodes as all zeros for its column and is counted
in an :class:`Unseen` report instead of failing the run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from edge_runtime.data import SensorTable, concat_tables, load_table
from edge_runtime.errors import BundleError, DataError
from edge_runtime.preprocess import Indicator

__all__ = ["OneHotEncoder", "Unseen", "encode_table", "load_bundle_table"]

#: Unseen values listed by name in a report; the rest are counted.
_SHOWN = 5


@dataclass(frozen=True)
class Unseen:
    """Rows of one column whose category the bundle's vocabulary does not know."""

    column: str
    rows: int
    values: tuple[str, ...]   # distinct unseen values, most frequent first

    def message(self) -> str:
        shown = ", ".join(repr(v) for v in self.values[:_SHOWN])
        more = f" and {len(self.values) - _SHOWN} more" if len(self.values) > _SHOWN else ""
        kinds = "category" if len(self.values) == 1 else "categories"
        rows = "row" if self.rows == 1 else "rows"
        return (f"{len(self.values)} unseen {kinds} in column {self.column!r} in {self.rows} {rows} "
                f"(values: {shown}{more}); those rows were scored with no {self.column} category set")


@dataclass(frozen=True)
class OneHotEncoder:
    """Per column, the sorted categories seen in training; ``transform`` gives 0/1 indicators."""

    vocabulary: dict[str, tuple[str, ...]]

    @classmethod
    def fit(cls, categories: Mapping[str, ArrayLike], source: str = "training data") -> OneHotEncoder:
        vocabulary: dict[str, tuple[str, ...]] = {}
        for name, cells in categories.items():
            values = tuple(str(v) for v in np.unique(np.asarray(cells, dtype=np.str_)))
            if len(values) < 2:
                only = f"the single value {values[0]!r}" if values else "no values"
                raise DataError(
                    f"{source}: categorical column {name!r} has {only} in the training rows; "
                    f"it carries no information: leave it out of --categorical"
                )
            vocabulary[name] = values
        return cls(vocabulary)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.vocabulary)

    @property
    def channels(self) -> tuple[Indicator, ...]:
        """Indicator channel names, ``column=value``, in encoding order."""
        return tuple(Indicator(f"{c}={v}") for c, vals in self.vocabulary.items() for v in vals)

    def transform(self, categories: Mapping[str, ArrayLike],
                  source: str = "data") -> tuple[NDArray[np.float64], list[Unseen]]:
        """(n_rows, n_indicators) 0/1 array, and one :class:`Unseen` per column with unknown values."""
        missing = [c for c in self.vocabulary if c not in categories]
        if missing:
            raise DataError(f"{source}: categorical column {missing[0]!r} is missing; the bundle was trained with "
                            f"--categorical {','.join(self.vocabulary)}")
        n = len(np.asarray(next(iter(categories.values())))) if categories else 0
        blocks, unseen = [], []
        for name, vocab in self.vocabulary.items():
            cells = np.asarray(categories[name], dtype=np.str_)
            known = np.asarray(vocab, dtype=np.str_)
            idx = np.searchsorted(known, cells)
            hit = (idx < len(known)) & (known[np.minimum(idx, len(known) - 1)] == cells)
            block = np.zeros((n, len(known)))
            block[np.flatnonzero(hit), idx[hit]] = 1.0
            blocks.append(block)
            if not hit.all():
                values, counts = np.unique(cells[~hit], return_counts=True)
                order = np.argsort(-counts, kind="stable")
                unseen.append(Unseen(name, int((~hit).sum()), tuple(str(values[i]) for i in order)))
        return (np.concatenate(blocks, axis=1) if blocks else np.empty((n, 0))), unseen

    def to_manifest(self) -> dict[str, Any]:
        return {"columns": list(self.vocabulary), "vocabulary": {c: list(v) for c, v in self.vocabulary.items()}}

    @classmethod
    def from_manifest(cls, d: Mapping[str, Any], where: str = "bundle") -> OneHotEncoder:
        try:
            vocabulary = {str(c): tuple(str(v) for v in d["vocabulary"][c]) for c in d["columns"]}
        except (KeyError, TypeError) as err:
            raise BundleError(f"{where}: manifest 'categorical' is malformed ({err!r}); re-train the bundle") from err
        if any(list(v) != sorted(v) for v in vocabulary.values()):
            raise BundleError(f"{where}: manifest 'categorical' vocabulary is not sorted; re-train the bundle")
        return cls(vocabulary)


def encode_table(table: SensorTable, encoder: OneHotEncoder | None) -> tuple[SensorTable, list[Unseen]]:
    """The table the model sees: numeric columns, then the indicator columns (categories consumed)."""
    if encoder is None:
        return table, []
    onehot, unseen = encoder.transform(table.categories, table.source)
    return replace(table, columns=(*table.columns, *encoder.channels),
                   values=np.concatenate([table.values, onehot], axis=1), categories={}), unseen


def bundle_encoder(bundle: Any) -> OneHotEncoder | None:
    """The bundle's encoder, or None for bundles without categorical columns."""
    d = bundle.manifest.get("categorical")
    if d is None:
        return None
    where = str(bundle.path or "bundle")
    encoder = OneHotEncoder.from_manifest(d, where)
    names = bundle.channel_names
    tail = list(encoder.channels)
    if names[len(names) - len(tail):] != tail:
        raise BundleError(f"{where}: the last channels {names[len(names) - len(tail):]} are not the one-hot channels "
                          f"{tail} of its vocabulary; re-train the bundle")
    return encoder


def load_bundle_table(bundle: Any, paths: Sequence[str], **kwargs: Any) -> tuple[SensorTable, list[Unseen]]:
    """Read data files for ``bundle``: its numeric channels and categorical columns, encoded as it was trained.

    ``kwargs`` go to :func:`edge_runtime.data.load_table` (format, time_column, label_column, units).
    """
    encoder = bundle_encoder(bundle)
    names = bundle.channel_names
    numeric = names if encoder is None else names[:len(names) - len(encoder.channels)]
    tables = [load_table(p, columns=numeric, categorical=encoder.columns if encoder else None,
                         columns_from="the bundle's channels", **kwargs)
              for p in paths]
    return encode_table(concat_tables(tables), encoder)
