"""The statistical-analysis layer against scipy/statsmodels/pandas called directly."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from streamlearn.analytics.analysis import (
    AnalysisError,
    CorrelationMatrix,
    Description,
    correlation_matrix,
    describe,
)
from streamlearn.analytics.comparisons import (
    TestResult,
    anova_oneway,
    chi_square,
    ks_two_sample,
    mann_whitney_u,
    welch_t_test,
)
from streamlearn.analytics.regression import OLSResult, ols
from streamlearn.errors import StreamlearnError

RNG = np.random.default_rng(20240611)
XA = RNG.normal(10.0, 2.0, size=40)
XB = RNG.normal(11.0, 3.0, size=35)
XC = RNG.normal(12.5, 2.5, size=30)


def close(got: float, want: float, rel: float = 1e-9) -> bool:
    return math.isclose(got, float(want), rel_tol=rel, abs_tol=1e-12)


def json_roundtrip(result: object) -> dict:
    """to_dict() must be strict JSON (no NaN/inf tokens)."""
    data = result.to_dict()  # type: ignore[attr-defined]
    return json.loads(json.dumps(data, allow_nan=False))


def test_analysis_error_is_a_streamlearn_error() -> None:
    assert issubclass(AnalysisError, StreamlearnError)


# ---- describe -------------------------------------------------------------------------


def test_describe_matches_numpy_and_pandas() -> None:
    d = describe(XA)
    s = pd.Series(XA)
    assert d.count == 40
    assert close(d.mean, XA.mean())
    assert close(d.std, XA.std(ddof=1))
    assert d.min == XA.min() and d.max == XA.max()
    assert close(d.p25, np.percentile(XA, 25))
    assert close(d.median, np.median(XA))
    assert close(d.p75, np.percentile(XA, 75))
    assert close(d.skewness, s.skew(), rel=1e-7)
    assert close(d.kurtosis, s.kurt(), rel=1e-7)
    assert close(d.skewness, stats.skew(XA, bias=False))
    assert close(d.kurtosis, stats.kurtosis(XA, bias=False))


def test_describe_hand_computed() -> None:
    d = describe([1, 2, 3, 4])
    assert (d.count, d.mean, d.min, d.median, d.max) == (4, 2.5, 1.0, 2.5, 4.0)
    assert (d.p25, d.p75) == (1.75, 3.25)
    assert close(d.std, math.sqrt(5 / 3))
    assert d.skewness == pytest.approx(0.0, abs=1e-12)
    assert close(d.kurtosis, -1.2)


def test_describe_undefined_values_are_none_in_json() -> None:
    one = json_roundtrip(describe([3.5]))
    assert one["count"] == 1 and one["mean"] == 3.5
    assert one["std"] is None and one["skewness"] is None and one["kurtosis"] is None
    flat = describe([2.0] * 6)
    assert flat.std == 0.0 and math.isnan(flat.skewness) and math.isnan(flat.kurtosis)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([], "at least 1 observations, got 0"),
        ([1.0, float("nan")], "non-finite"),
        ([1.0, float("inf")], "non-finite"),
        ([1.0, None], "non-finite"),
        ([[1.0, 2.0], [3.0, 4.0]], "one-dimensional"),
        (["a", "b"], "sequence of numbers"),
    ],
)
def test_describe_rejects_bad_input(values: object, message: str) -> None:
    with pytest.raises(AnalysisError, match=message):
        describe(values)  # type: ignore[arg-type]


# ---- Welch's t-test -------------------------------------------------------------------


def test_welch_matches_scipy() -> None:
    r = welch_t_test(XA, XB)
    ref = stats.ttest_ind(XA, XB, equal_var=False)
    assert r.test == "welch_t_test" and r.n == (40, 35)
    assert close(r.statistic, ref.statistic)
    assert close(r.p_value, ref.pvalue)
    assert close(r.detail["df"], ref.df)
    ci = ref.confidence_interval(0.95)
    assert close(r.detail["ci95_low"], ci.low) and close(r.detail["ci95_high"], ci.high)
    pooled = math.sqrt((39 * XA.var(ddof=1) + 34 * XB.var(ddof=1)) / 73)
    assert r.effect_size_name == "cohens_d_pooled_sd"
    assert close(r.effect_size, (XA.mean() - XB.mean()) / pooled)


def test_welch_cohens_d_hand_computed() -> None:
    # Means 3 and 5, both variances 2.5 -> pooled sd sqrt(2.5), d = -2 / sqrt(2.5).
    r = welch_t_test([1, 2, 3, 4, 5], [3, 4, 5, 6, 7])
    assert close(r.effect_size, -2 / math.sqrt(2.5))
    assert close(r.statistic, -2 / math.sqrt(2.5 / 5 + 2.5 / 5))
    assert close(r.detail["df"], 8.0)
    assert r.detail["mean_difference"] == -2.0


def test_welch_one_constant_sample_is_fine_both_is_not() -> None:
    r = welch_t_test([1, 1, 1], [1, 2, 3, 4])
    # Variances 0 and 5/3: t = (1 - 2.5) / sqrt(0 / 3 + (5 / 3) / 4).
    assert close(r.statistic, -1.5 / math.sqrt(5 / 12))
    with pytest.raises(AnalysisError, match="both samples are constant"):
        welch_t_test([1, 1, 1], [2, 2])


@pytest.mark.parametrize("func", [welch_t_test, mann_whitney_u, ks_two_sample])
def test_two_sample_tests_need_two_finite_values_each(func) -> None:
    with pytest.raises(AnalysisError, match=r"b needs at least 2 observations, got 1"):
        func([1.0, 2.0, 3.0], [4.0])
    with pytest.raises(AnalysisError, match=r"a has 1 non-finite"):
        func([1.0, float("nan"), 3.0], [4.0, 5.0])


# ---- Mann-Whitney U -------------------------------------------------------------------


def test_mann_whitney_matches_scipy() -> None:
    r = mann_whitney_u(XA, XB)
    ref = stats.mannwhitneyu(XA, XB, alternative="two-sided")
    assert close(r.statistic, ref.statistic)
    assert close(r.p_value, ref.pvalue)
    assert r.effect_size_name == "rank_biserial"
    assert close(r.effect_size, 2 * ref.statistic / (40 * 35) - 1)
    assert close(r.detail["u_b"], 40 * 35 - ref.statistic)


def test_mann_whitney_rank_biserial_hand_computed() -> None:
    # a beats b in 4 of 6 pairs: U_a = 4, r = 2 * 4 / 6 - 1 = 1/3.
    r = mann_whitney_u([1, 4, 5], [2, 3])
    assert r.statistic == 4.0
    assert close(r.effect_size, 1 / 3)
    assert close(r.detail["prob_superiority"], 4 / 6)
    assert mann_whitney_u([6, 7, 8], [1, 2]).effect_size == 1.0
    assert mann_whitney_u([1, 2], [6, 7, 8]).effect_size == -1.0


def test_mann_whitney_all_identical_is_rejected() -> None:
    with pytest.raises(AnalysisError, match="identical"):
        mann_whitney_u([2, 2, 2], [2, 2])


# ---- Kolmogorov-Smirnov ---------------------------------------------------------------


def test_ks_matches_scipy() -> None:
    r = ks_two_sample(XA, XC)
    ref = stats.ks_2samp(XA, XC)
    assert close(r.statistic, ref.statistic) and close(r.p_value, ref.pvalue)
    assert r.effect_size == r.statistic and r.effect_size_name == "ks_d"
    assert close(r.detail["statistic_location"], ref.statistic_location)
    assert r.detail["statistic_sign"] == int(ref.statistic_sign)


def test_ks_disjoint_samples_have_d_one() -> None:
    r = ks_two_sample([1, 2, 3], [10, 11, 12, 13])
    assert r.statistic == 1.0 and r.effect_size == 1.0
    assert ks_two_sample([1, 2, 3], [1, 2, 3]).statistic == 0.0


# ---- ANOVA ----------------------------------------------------------------------------


def test_anova_matches_scipy_and_sums_of_squares() -> None:
    r = anova_oneway(XA, XB, XC)
    ref = stats.f_oneway(XA, XB, XC)
    assert close(r.statistic, ref.statistic) and close(r.p_value, ref.pvalue)
    allv = np.concatenate([XA, XB, XC])
    ss_total = ((allv - allv.mean()) ** 2).sum()
    ss_between = sum(g.size * (g.mean() - allv.mean()) ** 2 for g in (XA, XB, XC))
    assert r.effect_size_name == "eta_squared"
    assert close(r.effect_size, ss_between / ss_total, rel=1e-9)
    assert r.n == (40, 35, 30)
    assert (r.detail["df_between"], r.detail["df_within"]) == (2, 102)


def test_anova_eta_squared_matches_statsmodels_anova_table() -> None:
    frame = pd.DataFrame(
        {"y": np.concatenate([XA, XB, XC]), "g": ["a"] * 40 + ["b"] * 35 + ["c"] * 30}
    )
    table = sm.stats.anova_lm(sm.formula.ols("y ~ C(g)", data=frame).fit())
    eta = table.loc["C(g)", "sum_sq"] / table["sum_sq"].sum()
    assert close(anova_oneway(XA, XB, XC).effect_size, eta, rel=1e-9)


def test_anova_rejects_bad_groups() -> None:
    with pytest.raises(AnalysisError, match="at least 3 groups, got 2"):
        anova_oneway(XA, XB)
    with pytest.raises(AnalysisError, match=r"group 2 needs at least 2 observations, got 1"):
        anova_oneway(XA, XB, [1.0])
    with pytest.raises(AnalysisError, match="every group is constant"):
        anova_oneway([1, 1], [2, 2], [3, 3])


# ---- chi-square -----------------------------------------------------------------------

TABLE = np.array([[12, 5, 9], [7, 15, 4]])


def test_chi_square_table_matches_scipy() -> None:
    r = chi_square(TABLE)
    ref = stats.chi2_contingency(TABLE)
    assert close(r.statistic, ref.statistic) and close(r.p_value, ref.pvalue)
    assert r.detail["dof"] == 2 and r.n == (52,)
    assert np.allclose(r.detail["expected"], ref.expected_freq)
    # Cramér's V by hand: sqrt(chi2 / (n * (min(rows, cols) - 1))), chi2 uncorrected.
    assert r.effect_size_name == "cramers_v"
    assert close(r.effect_size, math.sqrt(ref.statistic / (52 * 1)))


def test_chi_square_two_by_two_yates_and_cramers_v() -> None:
    table = [[20, 10], [5, 25]]
    yates = chi_square(table)
    plain = chi_square(table, correction=False)
    assert close(yates.statistic, stats.chi2_contingency(table, correction=True).statistic)
    assert close(plain.statistic, stats.chi2_contingency(table, correction=False).statistic)
    assert yates.statistic < plain.statistic
    assert yates.detail["correction"] is True and plain.detail["correction"] is False
    # V ignores the correction: the same for both, from the uncorrected chi-square.
    assert close(yates.effect_size, math.sqrt(plain.statistic / 60))
    assert yates.effect_size == plain.effect_size


def test_cramers_v_perfect_and_no_association() -> None:
    assert chi_square([[10, 0], [0, 10]]).effect_size == pytest.approx(1.0)
    assert chi_square([[7, 0, 0], [0, 4, 0], [0, 0, 9]]).effect_size == pytest.approx(1.0)
    independent = chi_square([[10, 20], [20, 40]])
    assert independent.effect_size == pytest.approx(0.0, abs=1e-12)
    assert independent.p_value == pytest.approx(1.0)


def test_chi_square_labels_equal_crosstab() -> None:
    a = ["red", "blue", "red", "green", "blue", "red", "green", "green", "blue", "red"] * 3
    b = ["x", "y", "x", "y", "y", "x", "x", "y", "y", "x"] * 3
    r = chi_square(a, b)
    table = pd.crosstab(pd.Series(a), pd.Series(b)).to_numpy()
    ref = stats.chi2_contingency(table)
    assert close(r.statistic, ref.statistic) and close(r.p_value, ref.pvalue)
    assert r.detail["row_labels"] == ["blue", "green", "red"]
    assert r.detail["col_labels"] == ["x", "y"]
    assert r.detail["table"] == table.tolist()
    assert r.n == (30,)
    assert close(r.effect_size, stats.contingency.association(table, method="cramer"))


def test_chi_square_labels_of_mixed_types() -> None:
    r = chi_square([1, "a", 1, "a", 1], [True, False, True, False, False])
    assert sorted(map(str, r.detail["row_labels"])) == ["1", "a"]
    assert sum(map(sum, r.detail["table"])) == 5
    json_roundtrip(r)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([1, 2, 3],), "must be 2-D"),
        (([[1, -2], [3, 4]],), "non-negative whole counts"),
        (([[1.5, 2], [3, 4]],), "non-negative whole counts"),
        (([[1, float("nan")], [3, 4]],), "non-finite"),
        (([[1, 2, 3]],), "at least 2 categories"),
        (([[1, 0, 2], [3, 0, 4]],), r"columns \[1\]"),
        ((["a", "b"], ["x"]), "equal lengths, got 2 and 1"),
        ((["a", None, "b"], ["x", "y", "x"]), "a has 1 missing label"),
        ((["a", "b", "c"], ["x", "y", float("nan")]), "b has 1 missing label"),
        ((["a", "a", "a"], ["x", "y", "x"]), "at least 2 categories"),
    ],
)
def test_chi_square_rejects_bad_input(args: tuple, message: str) -> None:
    with pytest.raises(AnalysisError, match=message):
        chi_square(*args)


# ---- correlation ----------------------------------------------------------------------


def test_correlation_matrix_matches_scipy_per_pair() -> None:
    cols = {"a": XA[:30], "b": XB[:30], "c": XC[:30] + 0.5 * XA[:30]}
    for method, fn in (("pearson", stats.pearsonr), ("spearman", stats.spearmanr)):
        cm = correlation_matrix(cols, method=method)
        assert cm.names == ("a", "b", "c") and cm.method == method
        for i, x in enumerate(cols):
            assert cm.matrix[i][i] == 1.0 and math.isnan(cm.p_values[i][i])
            for j, y in enumerate(cols):
                if i != j:
                    ref = fn(cols[x], cols[y])
                    assert close(cm.matrix[i][j], ref.statistic)
                    assert close(cm.p_values[i][j], ref.pvalue)
                    assert cm.n[i][j] == 30


def test_correlation_missing_pairwise_and_listwise_match_pandas() -> None:
    cols = {
        "x": [1.0, 2.0, None, 4.0, 5.0, 6.0, 7.0],
        "y": [2.0, 1.0, 4.0, 3.0, 7.0, None, 6.0],
        "z": [9.0, 7.0, 8.0, float("nan"), 3.0, 2.0, 4.0],
    }
    frame = pd.DataFrame(cols, dtype=float)
    pairwise = correlation_matrix(cols)
    assert pairwise.missing == "pairwise"
    assert np.allclose(pairwise.matrix, frame.corr().to_numpy())
    assert pairwise.n[0][1] == 5 and pairwise.n[0][2] == 5 and pairwise.n[1][2] == 5
    assert pairwise.n[0][0] == 6
    listwise = correlation_matrix(cols, "spearman", missing="listwise")
    assert np.allclose(listwise.matrix, frame.dropna().corr(method="spearman").to_numpy())
    assert {n for row in listwise.n for n in row} == {4}
    data = json_roundtrip(listwise)
    assert data["p_values"][0][0] is None and data["names"] == ["x", "y", "z"]


@pytest.mark.parametrize(
    ("columns", "kwargs", "message"),
    [
        ({"x": [1, 2, 3]}, {}, "at least 2 columns, got 1"),
        ({"x": [1, 2, 3], "y": [1, 2]}, {}, "equal lengths"),
        ({"x": [1, 2, 3], "y": [1, 2, 3]}, {"method": "kendall"}, "unknown method 'kendall'"),
        ({"x": [1, 2, 3], "y": [1, 2, 3]}, {"missing": "drop"}, "unknown missing-value"),
        ({"x": [1, 2, float("inf")], "y": [1, 2, 3]}, {}, "'x' holds infinite"),
        ({"x": [1, 2, None, 4], "y": [1, None, 3, 4]}, {}, "at least 3 complete rows.*got 2"),
        ({"x": [1, 2, 3, 4], "y": [5, 5, 5, 5]}, {}, "'y' is constant"),
        ({"x": [1, 2, 3, 4], "y": [1, 2, 3, "a"]}, {}, "sequence of numbers"),
    ],
)
def test_correlation_rejects_bad_input(columns: dict, kwargs: dict, message: str) -> None:
    with pytest.raises(AnalysisError, match=message):
        correlation_matrix(columns, **kwargs)


# ---- OLS ------------------------------------------------------------------------------

X1 = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
X2 = [2.0, 1.0, 4.0, 3.0, 6.0, 5.0, 8.0, 9.0]
Y = [3.1, 3.9, 7.2, 7.8, 11.1, 11.9, 15.2, 16.8]


def test_ols_matches_statsmodels() -> None:
    fit = ols(Y, {"x1": X1, "x2": X2})
    ref = sm.OLS(np.array(Y), sm.add_constant(np.column_stack([X1, X2]))).fit()
    assert fit.names == ("const", "x1", "x2") and fit.n == 8 and fit.df_resid == 5
    for got, want in (
        (fit.coefficients, ref.params),
        (fit.std_errors, ref.bse),
        (fit.t_values, ref.tvalues),
        (fit.p_values, ref.pvalues),
    ):
        assert np.allclose(got, want, rtol=1e-9, atol=0)
    assert close(fit.r_squared, ref.rsquared)
    assert close(fit.adj_r_squared, ref.rsquared_adj)
    assert close(fit.f_statistic, ref.fvalue) and close(fit.f_p_value, ref.f_pvalue)
    assert close(fit.coefficient("x2"), ref.params[2])


def test_ols_simple_regression_hand_computed() -> None:
    # Sxy = 19.6, Sxx = 10 -> slope 1.96, intercept 5.02 - 2 * 1.96 = 1.1.
    fit = ols([1.1, 2.9, 5.2, 7.1, 8.8], {"x": [0, 1, 2, 3, 4]})
    assert np.allclose(fit.coefficients, [1.1, 1.96])
    assert close(fit.r_squared, stats.pearsonr([0, 1, 2, 3, 4], [1.1, 2.9, 5.2, 7.1, 8.8])[0] ** 2)


def test_ols_without_intercept_and_intercept_only() -> None:
    fit = ols(Y, {"x1": X1}, add_intercept=False)
    ref = sm.OLS(np.array(Y), np.array(X1)).fit()
    assert fit.names == ("x1",)
    assert close(fit.coefficients[0], ref.params[0])
    assert close(fit.r_squared, ref.rsquared)  # uncentered, statsmodels' convention
    only = ols(Y, {})
    assert only.names == ("const",)
    assert close(only.coefficients[0], np.mean(Y))
    data = json_roundtrip(only)
    assert data["f_statistic"] is None and data["n"] == 8


@pytest.mark.parametrize(
    ("y", "X", "kwargs", "message"),
    [
        (Y, {"x": X1[:-1]}, {}, r"len\(y\) = 8 values, got \{'x': 7\}"),
        (Y, {"const": X1}, {}, "named 'const'"),
        (Y, {"x1": X1, "twice": [2 * v for v in X1]}, {}, "rank deficient"),
        (Y, {"flat": [1.0] * 8}, {}, "rank deficient"),
        ([1.0, 2.0, 3.0], {"a": [1, 2, 4], "b": [3, 1, 2]}, {}, "at least 4 observations, got 3"),
        ([2.0] * 5, {"x": [1, 2, 3, 4, 5]}, {}, "y is constant"),
        ([*Y[:-1], float("nan")], {"x": X1}, {}, "y has 1 non-finite"),
        (Y, {"x": [*X1[:-1], float("inf")]}, {}, r"X\['x'\] has 1 non-finite"),
        (Y, {}, {"add_intercept": False}, "no parameters"),
        (Y, [X1], {}, "must be a mapping"),
    ],
)
def test_ols_rejects_bad_input(y: list, X: object, kwargs: dict, message: str) -> None:
    with pytest.raises(AnalysisError, match=message):
        ols(y, X, **kwargs)  # type: ignore[arg-type]


# ---- result objects -------------------------------------------------------------------


def test_results_are_frozen_and_json_ready() -> None:
    results = [
        describe(XA),
        welch_t_test(XA, XB),
        mann_whitney_u(XA, XB),
        ks_two_sample(XA, XB),
        anova_oneway(XA, XB, XC),
        chi_square(TABLE),
        correlation_matrix({"a": XA[:30], "b": XB[:30]}),
        ols(Y, {"x1": X1}),
    ]
    kinds = (Description, TestResult, CorrelationMatrix, OLSResult)
    for result in results:
        assert isinstance(result, kinds)
        data = json_roundtrip(result)
        assert set(data) == {f.name for f in dataclasses.fields(result)}
        with pytest.raises(dataclasses.FrozenInstanceError):
            result.n = 0  # type: ignore[misc, union-attr]
    welch = json_roundtrip(results[1])
    assert welch["n"] == [40, 35] and isinstance(welch["statistic"], float)
    assert welch["p_value"] == results[1].p_value
