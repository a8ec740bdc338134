"""Tables read from CSV or JSON-lines files, checked and turned into a feature matrix.

Every problem a file can have (no such column, a non-numeric feature, a constant
target, a class with a single row...) raises :class:`OfflineError` with a message that
names it, so the CLI can print it instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from streamlearn.errors import StreamlearnError

__all__ = [
    "MAX_CLASSES_INFERRED",
    "Dataset",
    "OfflineError",
    "infer_task",
    "prepare_dataset",
    "read_table",
]

Task = Literal["classification", "regression"]
# An integer target with at most this many distinct values is taken as class labels.
MAX_CLASSES_INFERRED = 20


class OfflineError(StreamlearnError):
    """A data set, model name, option or saved model that offline training cannot use."""


def read_table(path: str | Path, fmt: str | None = None) -> pd.DataFrame:
    """The rows of a CSV (with a header) or JSON-lines file, by suffix unless ``fmt`` says.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "rows.jsonl"
    >>> _ = path.write_text('{"x": 1, "y": "a"}\\n{"x": 2.5, "y": "b"}\\n')
    >>> read_table(path)
         x  y
    0  1.0  a
    1  2.5  b
    >>> read_table(path.with_suffix(".csv"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    streamlearn.models.offline.data.OfflineError: .../rows.csv: no such file
    """
    path = Path(path)
    if not path.is_file():
        raise OfflineError(f"{path}: no such file")
    if fmt is None:
        fmt = "jsonl" if path.suffix.lower() in (".jsonl", ".ndjson", ".json") else "csv"
    if fmt not in ("csv", "jsonl"):
        raise OfflineError(f"unknown format {fmt!r}; known: csv, jsonl")
    try:
        # JSON lines: dtype=False keeps each value's own type (no guessing from strings).
        reader = pd.read_csv if fmt == "csv" else partial(pd.read_json, lines=True, dtype=False)
        frame = reader(path)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise OfflineError(f"{path}: cannot read as {fmt}: {exc}") from None
    if frame.empty:
        raise OfflineError(f"{path}: no rows")
    return frame


def infer_task(target: pd.Series) -> Task:
    """``classification`` for boolean, text or integer targets with few values, else regression.

    Examples
    --------
    >>> infer_task(pd.Series([True, False]))
    'classification'
    >>> infer_task(pd.Series([0, 1, 2, 1]))
    'classification'
    >>> infer_task(pd.Series([0.5, 1.25, 2.0]))
    'regression'
    """
    if pd.api.types.is_bool_dtype(target) or not pd.api.types.is_numeric_dtype(target):
        return "classification"
    if pd.api.types.is_integer_dtype(target):
        return "classification" if target.nunique() <= MAX_CLASSES_INFERRED else "regression"
    return "regression"


@dataclass
class Dataset:
    """A checked feature matrix and target, in row order (sorted by time when asked)."""

    X: np.ndarray
    y: np.ndarray
    features: list[str]
    target: str
    task: Task
    classes: list[Any] | None = None
    ignored_columns: list[str] = field(default_factory=list)
    dropped_rows: int = 0
    time_column: str | None = None

    @property
    def n_rows(self) -> int:
        return len(self.y)

    def rows(self) -> list[dict[str, float]]:
        """Each row as ``{feature: value}``, missing (NaN) values left out."""
        names = self.features
        out = []
        for values in self.X.tolist():
            out.append({n: v for n, v in zip(names, values, strict=True) if v == v})
        return out


def _native(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def prepare_dataset(
    frame: pd.DataFrame,
    target: str,
    *,
    features: Sequence[str] | None = None,
    task: Task | None = None,
    time_column: str | None = None,
) -> Dataset:
    """Check ``frame`` and split it into a float feature matrix and a target.

    Parameters
    ----------
    frame
        The rows, as :func:`read_table` returns them.
    target
        The column to predict. Rows where it is missing are dropped (and counted).
    features
        The feature columns; they must be numeric (booleans count as 0/1). Default:
        every numeric or boolean column but the target and the time column.
    task
        Default: :func:`infer_task`.
    time_column
        Rows are sorted by it (stable; numbers or date-times) and it is not a feature.

    Examples
    --------
    >>> frame = pd.DataFrame({"a": [1, 2, 3, 4], "b": ["x", "y", "x", "y"], "y": [0, 1, 0, 1]})
    >>> ds = prepare_dataset(frame, "y")
    >>> ds.features, ds.task, ds.classes, ds.ignored_columns
    (['a'], 'classification', [0, 1], ['b'])
    >>> prepare_dataset(frame, "y", features=["a", "b"])
    Traceback (most recent call last):
    ...
    streamlearn.models.offline.data.OfflineError: feature column b is not numeric \
(e.g. 'x'); pick numeric columns with --features
    >>> prepare_dataset(frame, "label")
    Traceback (most recent call last):
    ...
    streamlearn.models.offline.data.OfflineError: no target column 'label'; columns: a, b, y
    """
    columns = [str(c) for c in frame.columns]
    frame = frame.set_axis(columns, axis=1)
    if target not in columns:
        raise OfflineError(f"no target column {target!r}; columns: {', '.join(columns)}")
    if time_column is not None:
        if time_column not in columns:
            raise OfflineError(f"no time column {time_column!r}; columns: {', '.join(columns)}")
        frame = frame.iloc[_time_order(frame[time_column], time_column)]
    missing_target = frame[target].isna()
    dropped = int(missing_target.sum())
    frame = frame.loc[~missing_target]
    if frame.empty:
        raise OfflineError(f"target column {target!r} has no values")

    excluded = {target, time_column}
    ignored: list[str] = []
    if features is None:
        chosen = []
        for name in columns:
            if name in excluded:
                continue
            if _is_numeric(frame[name]):
                chosen.append(name)
            else:
                ignored.append(name)
        if not chosen:
            raise OfflineError(
                f"no numeric feature columns (besides target {target!r}); "
                f"non-numeric: {', '.join(ignored) or 'none'}"
            )
    else:
        chosen = list(dict.fromkeys(features))
        if not chosen:
            raise OfflineError("no feature columns given")
        unknown = [n for n in chosen if n not in columns]
        if unknown:
            raise OfflineError(
                f"no feature column {', '.join(unknown)}; columns: {', '.join(columns)}"
            )
        if target in chosen:
            raise OfflineError(f"the target {target!r} cannot also be a feature")
        for name in chosen:
            if not _is_numeric(frame[name]):
                example = frame[name].dropna().iloc[0] if frame[name].notna().any() else None
                raise OfflineError(
                    f"feature column {name} is not numeric (e.g. {example!r}); "
                    "pick numeric columns with --features"
                )
    X = frame[chosen].astype(float).to_numpy(dtype=float)
    # Missing targets widen a column's type (bool -> object, int -> float): narrow it back.
    y_series = frame[target].infer_objects()
    if dropped and pd.api.types.is_float_dtype(y_series) and (y_series % 1 == 0).all():
        y_series = y_series.astype("int64")
    task = task or infer_task(y_series)
    classes: list[Any] | None = None
    if task == "classification":
        counts = y_series.value_counts()
        if len(counts) < 2:
            raise OfflineError(
                f"target {target!r} is constant ({_native(counts.index[0])!r}): nothing to learn"
            )
        lonely = [_native(c) for c, n in counts.items() if n < 2]
        if lonely:
            shown = ", ".join(repr(c) for c in lonely[:5])
            more = f" and {len(lonely) - 5} more" if len(lonely) > 5 else ""
            raise OfflineError(
                f"target {target!r}: classes with a single row: {shown}{more} "
                "(a regression target? use --task regression)"
            )
        y = y_series.to_numpy()
        if y.dtype == object:
            y = y.astype(str)
        classes = sorted(_native(c) for c in np.unique(y))
    else:
        if not _is_numeric(y_series):
            raise OfflineError(f"regression target {target!r} is not numeric")
        y = y_series.astype(float).to_numpy(dtype=float)
        if np.nanstd(y) == 0:
            raise OfflineError(f"target {target!r} is constant ({y[0]!r}): nothing to learn")
    return Dataset(
        X=X,
        y=y,
        features=chosen,
        target=target,
        task=task,
        classes=classes,
        ignored_columns=ignored,
        dropped_rows=dropped,
        time_column=time_column,
    )


def _is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)


def _time_order(column: pd.Series, name: str) -> np.ndarray:
    if _is_numeric(column):
        keys = column.to_numpy(dtype=float)
    else:
        try:
            keys = pd.to_datetime(column, utc=True, format="mixed").to_numpy()
        except (ValueError, TypeError) as exc:
            raise OfflineError(
                f"time column {name!r} holds neither numbers nor times: {exc}"
            ) from None
    return np.argsort(keys, kind="stable")
