"""Thin async loops that move records between topics and call the pure layers."""

from streamlearn.agents.ingest import register_ingest
from streamlearn.agents.stats import register_stats

__all__ = ["register_ingest", "register_stats"]
