"""Two-sample and group hypothesis tests with effect sizes, as JSON-ready results.

Each test calls scipy.stats and returns a :class:`TestResult`. All tests are two-sided.
Effect sizes:

- Welch's t-test: Cohen's d with the *pooled* standard deviation
  (``(mean_a - mean_b) / sqrt(((n_a-1) s_a^2 + (n_b-1) s_b^2) / (n_a + n_b - 2))``).
- Mann-Whitney U: rank-biserial correlation ``2 U_a / (n_a n_b) - 1`` in [-1, 1];
  positive when ``a`` tends to be larger.
- Kolmogorov-Smirnov: the D statistic itself (largest gap between the two empirical CDFs).
- One-way ANOVA: eta squared, ``SS_between / SS_total`` (= ``F df_b / (F df_b + df_w)``).
- Chi-square contingency test: Cramér's V, from the chi-square *without* continuity
  correction (scipy.stats.contingency.association).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats
from scipy.stats.contingency import association

from streamlearn.analytics.analysis import AnalysisError, _is_constant, _Result, _sample

__all__ = [
    "TestResult",
    "anova_oneway",
    "chi_square",
    "ks_two_sample",
    "mann_whitney_u",
    "welch_t_test",
]

_MIN_PER_SAMPLE = 2


@dataclass(frozen=True)
class TestResult(_Result):
    """Outcome of one hypothesis test.

    ``n`` holds the size of each sample or group (for ``chi_square``: the total count);
    ``detail`` holds test-specific extras (means, degrees of freedom, ...), JSON-ready.
    """

    __test__ = False  # not a pytest test class, despite the name

    test: str
    statistic: float
    p_value: float
    effect_size: float
    effect_size_name: str
    n: tuple[int, ...]
    detail: dict[str, Any] = field(default_factory=dict)


def _two_samples(a: Any, b: Any, func: str) -> tuple[np.ndarray, np.ndarray]:
    return (
        _sample(a, name="a", func=func, min_n=_MIN_PER_SAMPLE),
        _sample(b, name="b", func=func, min_n=_MIN_PER_SAMPLE),
    )


def welch_t_test(a: Sequence[float], b: Sequence[float]) -> TestResult:
    """Welch's two-sample t-test (unequal variances), two-sided.

    Calls ``scipy.stats.ttest_ind(a, b, equal_var=False)``. The effect size is Cohen's d
    with the pooled standard deviation (``cohens_d_pooled_sd``), positive when ``a`` has
    the larger mean. ``detail``: ``mean_a``, ``mean_b``, ``mean_difference``, ``df``
    (Welch-Satterthwaite) and the 95% confidence interval of the mean difference
    (``ci95_low``, ``ci95_high``).

    Parameters
    ----------
    a, b : sequence of float
        At least 2 finite values each.

    Returns
    -------
    TestResult

    Raises
    ------
    AnalysisError
        Too few or non-finite values, or both samples constant (t is undefined).

    Examples
    --------
    >>> r = welch_t_test([5.1, 4.9, 5.6, 5.8, 6.0], [4.1, 4.5, 4.4, 4.0, 4.8])
    >>> round(r.statistic, 3), round(r.p_value, 4), round(r.effect_size, 3), r.n
    (4.427, 0.003, 2.8, (5, 5))
    >>> r.effect_size_name
    'cohens_d_pooled_sd'
    """
    func = "welch_t_test"
    x, y = _two_samples(a, b, func)
    if _is_constant(x) and _is_constant(y):
        raise AnalysisError(
            f"{func}: both samples are constant (zero variance); the t statistic is undefined"
        )
    with warnings.catch_warnings():
        # scipy flags an exactly constant sample as "precision loss"; one is valid here.
        warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)
        res = stats.ttest_ind(x, y, equal_var=False)
    na, nb = x.size, y.size
    pooled_var = ((na - 1) * np.var(x, ddof=1) + (nb - 1) * np.var(y, ddof=1)) / (na + nb - 2)
    diff = float(np.mean(x) - np.mean(y))
    ci = res.confidence_interval(confidence_level=0.95)
    return TestResult(
        test="welch_t_test",
        statistic=float(res.statistic),
        p_value=float(res.pvalue),
        effect_size=diff / math.sqrt(pooled_var),
        effect_size_name="cohens_d_pooled_sd",
        n=(int(na), int(nb)),
        detail={
            "mean_a": float(np.mean(x)),
            "mean_b": float(np.mean(y)),
            "mean_difference": diff,
            "df": float(res.df),
            "ci95_low": float(ci.low),
            "ci95_high": float(ci.high),
        },
    )


def mann_whitney_u(a: Sequence[float], b: Sequence[float]) -> TestResult:
    """Mann-Whitney U test (Wilcoxon rank-sum), two-sided.

    Calls ``scipy.stats.mannwhitneyu(a, b, alternative="two-sided")`` (scipy picks the
    exact or asymptotic method). ``statistic`` is U for ``a``. The effect size is the
    rank-biserial correlation ``2 U / (n_a n_b) - 1`` (``rank_biserial``), in [-1, 1] and
    positive when values of ``a`` tend to be larger. ``detail``: ``u_b`` (U for ``b``) and
    ``prob_superiority`` (``U / (n_a n_b)``, P(a > b) + P(a = b) / 2).

    Parameters
    ----------
    a, b : sequence of float
        At least 2 finite values each.

    Returns
    -------
    TestResult

    Raises
    ------
    AnalysisError
        Too few or non-finite values, or every value in both samples identical.

    Examples
    --------
    >>> r = mann_whitney_u([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    >>> r.statistic, round(r.p_value, 4), r.effect_size
    (0.0, 0.0079, -1.0)
    """
    func = "mann_whitney_u"
    x, y = _two_samples(a, b, func)
    if _is_constant(np.concatenate([x, y])):
        raise AnalysisError(
            f"{func}: every value in both samples is identical; the test has no information"
        )
    res = stats.mannwhitneyu(x, y, alternative="two-sided")
    u = float(res.statistic)
    pairs = x.size * y.size
    return TestResult(
        test="mann_whitney_u",
        statistic=u,
        p_value=float(res.pvalue),
        effect_size=2.0 * u / pairs - 1.0,
        effect_size_name="rank_biserial",
        n=(int(x.size), int(y.size)),
        detail={"u_b": float(pairs - u), "prob_superiority": u / pairs},
    )


def ks_two_sample(a: Sequence[float], b: Sequence[float]) -> TestResult:
    """Two-sample Kolmogorov-Smirnov test, two-sided.

    Calls ``scipy.stats.ks_2samp(a, b)``. The effect size is the statistic D itself
    (``ks_d``): the largest absolute gap between the two empirical CDFs, in [0, 1].
    ``detail``: ``statistic_location`` (the value where the gap is largest) and
    ``statistic_sign`` (+1 if ``a``'s CDF is above ``b``'s there, i.e. ``a`` tends smaller).

    Parameters
    ----------
    a, b : sequence of float
        At least 2 finite values each.

    Returns
    -------
    TestResult

    Raises
    ------
    AnalysisError
        Too few or non-finite values.

    Examples
    --------
    >>> r = ks_two_sample([1, 2, 3, 4, 5], [4, 5, 6, 7, 8])
    >>> r.statistic, round(r.p_value, 4), r.effect_size_name
    (0.6, 0.3571, 'ks_d')
    """
    x, y = _two_samples(a, b, "ks_two_sample")
    res = stats.ks_2samp(x, y)
    d = float(res.statistic)
    return TestResult(
        test="ks_two_sample",
        statistic=d,
        p_value=float(res.pvalue),
        effect_size=d,
        effect_size_name="ks_d",
        n=(int(x.size), int(y.size)),
        detail={
            "statistic_location": float(res.statistic_location),
            "statistic_sign": int(res.statistic_sign),
        },
    )


def anova_oneway(*groups: Sequence[float]) -> TestResult:
    """One-way ANOVA across three or more groups.

    Calls ``scipy.stats.f_oneway(*groups)``. The effect size is eta squared
    (``eta_squared``), the share of total variance between groups:
    ``F df_between / (F df_between + df_within)`` = ``SS_between / SS_total``.
    ``detail``: ``df_between``, ``df_within`` and ``group_means``. For two groups use
    :func:`welch_t_test`.

    Parameters
    ----------
    *groups : sequence of float
        Three or more groups of at least 2 finite values each.

    Returns
    -------
    TestResult

    Raises
    ------
    AnalysisError
        Fewer than 3 groups, too few or non-finite values, or no variance within any group
        (F is undefined).

    Examples
    --------
    >>> r = anova_oneway([1, 2, 3], [2, 3, 4], [5, 6, 7])
    >>> round(r.statistic, 3), round(r.p_value, 4), round(r.effect_size, 4), r.n
    (13.0, 0.0066, 0.8125, (3, 3, 3))
    """
    func = "anova_oneway"
    if len(groups) < 3:
        raise AnalysisError(
            f"{func}: needs at least 3 groups, got {len(groups)}; "
            "compare two groups with welch_t_test"
        )
    arrays = [
        _sample(g, name=f"group {i}", func=func, min_n=_MIN_PER_SAMPLE)
        for i, g in enumerate(groups)
    ]
    if all(_is_constant(g) for g in arrays):
        raise AnalysisError(
            f"{func}: every group is constant (zero within-group variance); F is undefined"
        )
    res = stats.f_oneway(*arrays)
    f = float(res.statistic)
    df_between = len(arrays) - 1
    df_within = sum(g.size for g in arrays) - len(arrays)
    return TestResult(
        test="anova_oneway",
        statistic=f,
        p_value=float(res.pvalue),
        effect_size=f * df_between / (f * df_between + df_within),
        effect_size_name="eta_squared",
        n=tuple(int(g.size) for g in arrays),
        detail={
            "df_between": df_between,
            "df_within": df_within,
            "group_means": [float(np.mean(g)) for g in arrays],
        },
    )


def _contingency_table(table: Any, func: str) -> np.ndarray:
    try:
        arr = np.asarray(table, dtype=float)
    except (TypeError, ValueError) as exc:
        raise AnalysisError(
            f"{func}: the table must hold numeric counts ({exc}); "
            "pass two label sequences as two arguments"
        ) from None
    if arr.ndim != 2:
        raise AnalysisError(
            f"{func}: the contingency table must be 2-D, got shape {arr.shape} "
            "(pass two label sequences as two arguments)"
        )
    if not np.isfinite(arr).all():
        raise AnalysisError(f"{func}: the table holds non-finite values")
    if (arr < 0).any() or (arr != np.round(arr)).any():
        raise AnalysisError(f"{func}: the table must hold non-negative whole counts")
    return arr.astype(np.int64)


def _crosstab(a: Any, b: Any, func: str) -> tuple[np.ndarray, list[Any], list[Any]]:
    import pandas as pd  # deferred: only label input needs it

    sa, sb = pd.Series(list(a), dtype=object), pd.Series(list(b), dtype=object)
    if len(sa) != len(sb):
        raise AnalysisError(
            f"{func}: the label sequences must have equal lengths, got {len(sa)} and {len(sb)}"
        )
    for name, s in (("a", sa), ("b", sb)):
        missing = int(s.isna().sum())
        if missing:
            raise AnalysisError(f"{func}: {name} has {missing} missing label(s) (None or NaN)")
    tab = pd.crosstab(sa, sb)
    return tab.to_numpy(dtype=np.int64), list(tab.index), list(tab.columns)


def chi_square(
    table_or_a: Any, b: Sequence[Any] | None = None, *, correction: bool = True
) -> TestResult:
    """Chi-square test of independence between two categorical attributes.

    Pass either a 2-D contingency table of counts (``chi_square(table)``) or two
    equal-length sequences of category labels (``chi_square(labels_a, labels_b)``), which
    are cross-tabulated with ``pandas.crosstab`` (rows: ``a``'s labels, columns: ``b``'s,
    both sorted). Calls ``scipy.stats.chi2_contingency(table, correction=correction)``;
    scipy applies Yates' correction only to 2x2 tables. The effect size is Cramér's V
    (``cramers_v``) from the uncorrected chi-square, in [0, 1]. ``detail``: ``dof``,
    ``table``, ``expected``, ``min_expected`` (the usual rule of thumb wants >= 5),
    ``row_labels`` and ``col_labels`` (indices for a table input).

    Parameters
    ----------
    table_or_a : 2-D array of counts, or sequence of labels
    b : sequence of labels, optional
        Labels paired with ``table_or_a``; omit it when passing a table.
    correction : bool
        Yates' continuity correction for 2x2 tables (scipy's default).

    Returns
    -------
    TestResult

    Raises
    ------
    AnalysisError
        A table that is not 2-D, not whole non-negative counts, smaller than 2x2 or with an
        all-zero row or column; label sequences of unequal length, with missing labels or
        with fewer than 2 categories.

    Examples
    --------
    >>> r = chi_square([[10, 0], [0, 10]])
    >>> round(r.statistic, 2), round(r.p_value, 6), r.effect_size, r.n
    (16.2, 5.7e-05, 1.0, (20,))
    >>> r = chi_square(["x", "x", "y", "y", "x", "y"], ["u", "u", "v", "v", "v", "u"])
    >>> r.detail["row_labels"], r.detail["col_labels"], r.detail["table"]
    (['x', 'y'], ['u', 'v'], [[2, 1], [1, 2]])
    >>> round(r.effect_size, 4)
    0.3333
    """
    func = "chi_square"
    if b is None:
        table = _contingency_table(table_or_a, func)
        rows, cols = list(range(table.shape[0])), list(range(table.shape[1]))
    else:
        table, rows, cols = _crosstab(table_or_a, b, func)
    if table.shape[0] < 2 or table.shape[1] < 2:
        raise AnalysisError(
            f"{func}: needs at least 2 categories in each attribute, got a "
            f"{table.shape[0]}x{table.shape[1]} table"
        )
    empty_rows = np.flatnonzero(table.sum(axis=1) == 0).tolist()
    empty_cols = np.flatnonzero(table.sum(axis=0) == 0).tolist()
    if empty_rows or empty_cols:
        raise AnalysisError(
            f"{func}: all-zero rows {empty_rows} / columns {empty_cols} make expected "
            "frequencies zero; drop them"
        )
    res = stats.chi2_contingency(table, correction=correction)
    return TestResult(
        test="chi_square",
        statistic=float(res.statistic),
        p_value=float(res.pvalue),
        effect_size=float(association(table, method="cramer", correction=False)),
        effect_size_name="cramers_v",
        n=(int(table.sum()),),
        detail={
            "dof": int(res.dof),
            "table": table.tolist(),
            "expected": res.expected_freq.tolist(),
            "min_expected": float(res.expected_freq.min()),
            "row_labels": rows,
            "col_labels": cols,
            "correction": bool(correction and res.dof == 1),
        },
    )
