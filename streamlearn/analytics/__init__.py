"""Statistics over streams: incremental (running) statistics and analysis of stored series."""

from streamlearn.analytics.running import RunningStats

__all__ = ["RunningStats"]
