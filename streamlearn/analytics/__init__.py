"""Statistics over streams: incremental (running) statistics, event-time windows and
the analysis of stored series (scipy/statsmodels)."""

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
from streamlearn.analytics.running import RunningStats

__all__ = [
    "AnalysisError",
    "CorrelationMatrix",
    "Description",
    "OLSResult",
    "RunningStats",
    "TestResult",
    "anova_oneway",
    "chi_square",
    "correlation_matrix",
    "describe",
    "ks_two_sample",
    "mann_whitney_u",
    "ols",
    "welch_t_test",
]
