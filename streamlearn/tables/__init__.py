"""Keyed state: per-key values with offset marks, an in-memory write-back cache and
the helper that lets a batch write to Faust tables outside per-event iteration."""

from streamlearn.tables.cache import StateCache
from streamlearn.tables.context import as_current_event
from streamlearn.tables.keystats import KeyStats
from streamlearn.tables.marks import OffsetMarks

__all__ = ["KeyStats", "OffsetMarks", "StateCache", "as_current_event"]
