"""Alerts: the envelope every alert record shares, and the webhook that delivers them.

:mod:`streamlearn.alerts.envelope` is pure (producers and tests use it freely);
:mod:`streamlearn.alerts.webhook` is the HTTP sink (aiohttp), used by
:mod:`streamlearn.agents.alerts`.
"""

from streamlearn.alerts.envelope import (
    ENVELOPE_FIELDS,
    SEVERITIES,
    TYPES,
    Alert,
    AlertError,
    at_least,
    dedup_key,
    max_severity,
    severity_rank,
)

__all__ = [
    "ENVELOPE_FIELDS",
    "SEVERITIES",
    "TYPES",
    "Alert",
    "AlertError",
    "at_least",
    "dedup_key",
    "max_severity",
    "severity_rank",
]
