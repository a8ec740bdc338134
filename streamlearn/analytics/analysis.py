"""Statistical analysis of stored series: summaries and correlation, shared input checks.

Pure Python on top of numpy and scipy (no Faust): every function takes plain sequences,
numpy arrays or mappings of them and returns a small frozen dataclass whose ``to_dict()``
is JSON-ready (numpy scalars become Python numbers, NaN and infinities become ``None``).

The group tests live in :mod:`streamlearn.analytics.comparisons` and least squares in
:mod:`streamlearn.analytics.regression`; both share :class:`AnalysisError` and the input
checks defined here. Bad input raises :class:`AnalysisError` with a message that says
what was expected and what was received.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
from scipy import stats

from streamlearn.errors import StreamlearnError

__all__ = [
    "AnalysisError",
    "CorrelationMatrix",
    "Description",
    "correlation_matrix",
    "describe",
]


class AnalysisError(StreamlearnError):
    """Input a statistical function cannot analyse; the message says what is wrong."""


def _jsonable(value: Any) -> Any:
    """``value`` with numpy types, tuples and non-finite floats made JSON-friendly."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray | list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


class _Result:
    """Mixin for the frozen result dataclasses: a JSON-friendly ``to_dict()``."""

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain Python values; NaN and infinities become ``None``."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


def _floats(values: Any, *, name: str, func: str) -> np.ndarray:
    """``values`` as a 1-D float array (``None`` becomes NaN); no finiteness check."""
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise AnalysisError(f"{func}: {name} must be a sequence of numbers ({exc})") from None
    if arr.ndim != 1:
        raise AnalysisError(
            f"{func}: {name} must be a one-dimensional sequence, got shape {arr.shape}"
        )
    return arr


def _sample(values: Any, *, name: str, func: str, min_n: int) -> np.ndarray:
    """``values`` as a 1-D array of finite floats with at least ``min_n`` entries."""
    arr = _floats(values, name=name, func=func)
    bad = int(np.count_nonzero(~np.isfinite(arr)))
    if bad:
        raise AnalysisError(
            f"{func}: {name} has {bad} non-finite value(s) (NaN, infinity or missing); "
            "drop or impute them first"
        )
    if arr.size < min_n:
        raise AnalysisError(f"{func}: {name} needs at least {min_n} observations, got {arr.size}")
    return arr


def _is_constant(arr: np.ndarray) -> bool:
    return arr.size > 0 and bool(np.ptp(arr) == 0)


@dataclass(frozen=True)
class Description(_Result):
    """Summary statistics of one sample; see :func:`describe`."""

    count: int
    mean: float
    std: float
    min: float
    p25: float
    median: float
    p75: float
    max: float
    skewness: float
    kurtosis: float


def describe(values: Sequence[float] | np.ndarray) -> Description:
    """Count, mean, spread, quantiles and shape of a sample.

    ``std`` is the sample standard deviation (ddof=1); quantiles use linear
    interpolation (numpy's default); ``skewness`` and ``kurtosis`` are scipy's
    bias-corrected estimators (``bias=False``, kurtosis is *excess* kurtosis, 0 for a
    normal distribution), the same as pandas' ``skew()`` and ``kurt()``.
    Undefined values are NaN (``None`` in ``to_dict()``): ``std`` below 2 observations,
    ``skewness`` below 3, ``kurtosis`` below 4, and both shape values for constant data.

    Parameters
    ----------
    values : sequence of float
        At least one finite number.

    Returns
    -------
    Description

    Raises
    ------
    AnalysisError
        If ``values`` is empty, not one-dimensional or holds NaN/infinity.

    Examples
    --------
    >>> d = describe([2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0])
    >>> d.count, d.mean, round(d.std, 4), d.median, d.p25, d.p75
    (8, 5.0, 2.1381, 4.5, 4.0, 5.5)
    >>> round(d.skewness, 4), round(d.kurtosis, 4)
    (0.8185, 0.9406)
    >>> describe([3.0]).to_dict()["std"] is None
    True
    """
    x = _sample(values, name="values", func="describe", min_n=1)
    n = int(x.size)
    p25, median, p75 = np.percentile(x, [25, 50, 75])
    constant = _is_constant(x)
    nan = math.nan
    return Description(
        count=n,
        mean=float(np.mean(x)),
        std=float(np.std(x, ddof=1)) if n >= 2 else nan,
        min=float(np.min(x)),
        p25=float(p25),
        median=float(median),
        p75=float(p75),
        max=float(np.max(x)),
        skewness=float(stats.skew(x, bias=False)) if n >= 3 and not constant else nan,
        kurtosis=(
            float(stats.kurtosis(x, fisher=True, bias=False)) if n >= 4 and not constant else nan
        ),
    )


@dataclass(frozen=True)
class CorrelationMatrix(_Result):
    """Pairwise correlations; see :func:`correlation_matrix`.

    ``matrix[i][j]`` and ``p_values[i][j]`` belong to ``names[i]`` and ``names[j]``;
    ``n[i][j]`` is the number of rows that pair was computed on. The diagonal holds
    ``1.0`` with a NaN p-value (``None`` in ``to_dict()``).
    """

    names: tuple[str, ...]
    matrix: tuple[tuple[float, ...], ...]
    p_values: tuple[tuple[float, ...], ...]
    n: tuple[tuple[int, ...], ...]
    method: str
    missing: str


_CORRELATIONS = {"pearson": stats.pearsonr, "spearman": stats.spearmanr}
_MIN_CORRELATION_ROWS = 3


def correlation_matrix(
    columns: Mapping[str, Sequence[float | None]],
    method: Literal["pearson", "spearman"] = "pearson",
    *,
    missing: Literal["pairwise", "listwise"] = "pairwise",
) -> CorrelationMatrix:
    """Correlation coefficients and their two-sided p-values between every pair of columns.

    Pearson uses :func:`scipy.stats.pearsonr`, Spearman :func:`scipy.stats.spearmanr`.
    Missing values (``None`` or NaN) are dropped **pairwise** by default: each pair uses
    every row where both columns are present, so ``n`` may differ between pairs (like
    ``pandas.DataFrame.corr``). With ``missing="listwise"`` a row missing in any column is
    dropped from every pair, so all coefficients share the same rows.

    Parameters
    ----------
    columns : mapping of str to sequence of float
        At least two columns of equal length; ``None``/NaN mark missing values.
    method : {"pearson", "spearman"}
    missing : {"pairwise", "listwise"}

    Returns
    -------
    CorrelationMatrix

    Raises
    ------
    AnalysisError
        Fewer than two columns, unequal lengths, infinite values, an unknown ``method`` or
        ``missing``, fewer than 3 complete rows for a pair, or a column that is constant
        over a pair's rows (the coefficient is undefined).

    Examples
    --------
    >>> cm = correlation_matrix({"x": [1, 2, 3, 4, 5], "y": [2, 4, 5, 4, 5], "z": [5, 4, 3, 2, 1]})
    >>> cm.names
    ('x', 'y', 'z')
    >>> [[round(r, 3) for r in row] for row in cm.matrix]
    [[1.0, 0.775, -1.0], [0.775, 1.0, -0.775], [-1.0, -0.775, 1.0]]
    >>> round(cm.p_values[0][1], 3)
    0.124
    >>> cm = correlation_matrix({"x": [1, 2, 3, None], "y": [1, 3, 2, 4]}, method="spearman")
    >>> round(cm.matrix[0][1], 2), cm.n[0][1]
    (0.5, 3)
    """
    func = "correlation_matrix"
    if method not in _CORRELATIONS:
        raise AnalysisError(
            f"{func}: unknown method {method!r}; use one of {sorted(_CORRELATIONS)}"
        )
    if missing not in ("pairwise", "listwise"):
        raise AnalysisError(
            f"{func}: unknown missing-value policy {missing!r}; use 'pairwise' or 'listwise'"
        )
    if not isinstance(columns, Mapping):
        raise AnalysisError(f"{func}: columns must be a mapping of name to values")
    names = tuple(str(name) for name in columns)
    if len(names) < 2:
        raise AnalysisError(f"{func}: needs at least 2 columns, got {len(names)}")
    if len(set(names)) < len(names):
        raise AnalysisError(f"{func}: column names must be distinct as strings, got {names}")
    data = [
        _floats(col, name=f"column {name!r}", func=func)
        for name, col in zip(names, columns.values(), strict=True)
    ]
    lengths = {name: arr.size for name, arr in zip(names, data, strict=True)}
    if len(set(lengths.values())) > 1:
        raise AnalysisError(f"{func}: columns must have equal lengths, got {lengths}")
    for name, arr in zip(names, data, strict=True):
        if np.isinf(arr).any():
            raise AnalysisError(f"{func}: column {name!r} holds infinite values")
    present = [~np.isnan(arr) for arr in data]
    if missing == "listwise":
        rows = np.logical_and.reduce(present)
        present = [rows] * len(data)

    correlate = _CORRELATIONS[method]
    k = len(names)
    r = np.eye(k)
    p = np.full((k, k), math.nan)
    counts = np.zeros((k, k), dtype=int)
    for i in range(k):
        counts[i, i] = int(present[i].sum())
        for j in range(i + 1, k):
            rows = present[i] & present[j]
            n = int(rows.sum())
            if n < _MIN_CORRELATION_ROWS:
                raise AnalysisError(
                    f"{func}: columns {names[i]!r} and {names[j]!r} need at least "
                    f"{_MIN_CORRELATION_ROWS} complete rows ({missing} deletion), got {n}"
                )
            x, y = data[i][rows], data[j][rows]
            for name, other, arr in ((names[i], names[j], x), (names[j], names[i], y)):
                if _is_constant(arr):
                    raise AnalysisError(
                        f"{func}: column {name!r} is constant over the rows shared with "
                        f"{other!r}; the correlation is undefined"
                    )
            res = correlate(x, y)
            r[i, j] = r[j, i] = float(res.statistic)
            p[i, j] = p[j, i] = float(res.pvalue)
            counts[i, j] = counts[j, i] = n
    return CorrelationMatrix(
        names=names,
        matrix=tuple(tuple(float(v) for v in row) for row in r),
        p_values=tuple(tuple(float(v) for v in row) for row in p),
        n=tuple(tuple(int(v) for v in row) for row in counts),
        method=method,
        missing=missing,
    )
