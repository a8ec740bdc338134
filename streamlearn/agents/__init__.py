"""Thin async loops that move records between topics and call the pure layers."""

from streamlearn.agents.ingest import register_ingest
from streamlearn.agents.pipeline import Component, register_pipeline
from streamlearn.agents.stats import StatsComponent

__all__ = ["Component", "StatsComponent", "register_ingest", "register_pipeline"]
