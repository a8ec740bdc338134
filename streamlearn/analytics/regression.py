"""Ordinary least squares via statsmodels, as a JSON-ready result."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from streamlearn.analytics.analysis import AnalysisError, _is_constant, _Result, _sample

__all__ = ["INTERCEPT", "OLSResult", "ols"]

INTERCEPT = "const"
"""Name of the intercept term in :class:`OLSResult` (statsmodels' own name for it)."""


@dataclass(frozen=True)
class OLSResult(_Result):
    """Fitted OLS model; see :func:`ols`.

    ``coefficients``, ``std_errors``, ``t_values`` and ``p_values`` are aligned with
    ``names`` (the intercept, if any, first as ``"const"``). ``r_squared`` is centered
    with an intercept and uncentered without one (statsmodels' convention).
    ``f_statistic`` / ``f_p_value`` test all slopes = 0 (NaN for an intercept-only model).
    """

    names: tuple[str, ...]
    coefficients: tuple[float, ...]
    std_errors: tuple[float, ...]
    t_values: tuple[float, ...]
    p_values: tuple[float, ...]
    r_squared: float
    adj_r_squared: float
    f_statistic: float
    f_p_value: float
    n: int
    df_resid: int

    def coefficient(self, name: str) -> float:
        """The coefficient of the regressor ``name`` (``"const"`` for the intercept)."""
        return self.coefficients[self.names.index(name)]


def ols(
    y: Sequence[float], X: Mapping[str, Sequence[float]], add_intercept: bool = True
) -> OLSResult:
    """Fit ``y`` on the columns of ``X`` by ordinary least squares (``statsmodels.OLS``).

    Standard errors are the classical (non-robust) ones; p-values are two-sided t-tests of
    each coefficient being 0.

    Parameters
    ----------
    y : sequence of float
        The response, finite values.
    X : mapping of str to sequence of float
        Regressors by name, each as long as ``y``; may be empty when ``add_intercept``.
    add_intercept : bool
        Prepend a constant column named ``"const"``.

    Returns
    -------
    OLSResult

    Raises
    ------
    AnalysisError
        Non-finite values, unequal lengths, no parameters, no more observations than
        parameters, a regressor named ``"const"`` alongside the intercept, a rank-deficient
        design (a constant or collinear regressor), or a constant ``y`` with an intercept
        (R squared undefined).

    Examples
    --------
    >>> fit = ols([1.1, 2.9, 5.2, 7.1, 8.8], {"x": [0, 1, 2, 3, 4]})
    >>> fit.names
    ('const', 'x')
    >>> [round(c, 3) for c in fit.coefficients], round(fit.r_squared, 4), fit.n
    ([1.1, 1.96], 0.9976, 5)
    >>> round(fit.coefficient("x"), 2)
    1.96
    """
    func = "ols"
    if not isinstance(X, Mapping):
        raise AnalysisError(f"{func}: X must be a mapping of regressor name to values")
    yv = _sample(y, name="y", func=func, min_n=1)
    regressors = [str(name) for name in X]
    if len(set(regressors)) < len(regressors):
        raise AnalysisError(f"{func}: regressor names must be distinct, got {regressors}")
    if add_intercept and INTERCEPT in regressors:
        raise AnalysisError(
            f"{func}: a regressor is named {INTERCEPT!r}, the intercept's name; rename it "
            "or pass add_intercept=False"
        )
    columns = [
        _sample(col, name=f"X[{name!r}]", func=func, min_n=1)
        for name, col in zip(regressors, X.values(), strict=True)
    ]
    bad = {name: col.size for name, col in zip(regressors, columns, strict=True)}
    bad = {name: size for name, size in bad.items() if size != yv.size}
    if bad:
        raise AnalysisError(
            f"{func}: every regressor must have len(y) = {yv.size} values, got {bad}"
        )
    names = ([INTERCEPT] if add_intercept else []) + regressors
    k, n = len(names), int(yv.size)
    if k == 0:
        raise AnalysisError(f"{func}: no parameters to fit (X is empty and add_intercept=False)")
    if n <= k:
        raise AnalysisError(
            f"{func}: needs more observations than parameters ({k}), i.e. at least {k + 1} "
            f"observations, got {n}"
        )
    design = np.column_stack(([np.ones(n)] if add_intercept else []) + columns)
    rank = int(np.linalg.matrix_rank(design))
    if rank < k:
        raise AnalysisError(
            f"{func}: the design matrix is rank deficient (rank {rank} < {k} parameters): a "
            "regressor is constant (collinear with the intercept) or a linear combination of "
            "others"
        )
    if add_intercept and _is_constant(yv):
        raise AnalysisError(f"{func}: y is constant; R squared is undefined")
    if not add_intercept and not yv.any():
        raise AnalysisError(f"{func}: y is all zeros; R squared is undefined")

    import statsmodels.api as sm  # deferred: slow to import, only needed here

    fit = sm.OLS(yv, design).fit()
    return OLSResult(
        names=tuple(names),
        coefficients=tuple(float(v) for v in fit.params),
        std_errors=tuple(float(v) for v in fit.bse),
        t_values=tuple(float(v) for v in fit.tvalues),
        p_values=tuple(float(v) for v in fit.pvalues),
        r_squared=float(fit.rsquared),
        adj_r_squared=float(fit.rsquared_adj),
        f_statistic=float(fit.fvalue) if len(regressors) else float("nan"),
        f_p_value=float(fit.f_pvalue) if len(regressors) else float("nan"),
        n=n,
        df_resid=int(fit.df_resid),
    )
