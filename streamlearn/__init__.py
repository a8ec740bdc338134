"""streamlearn: real-time analytics and online machine learning on Apache Kafka."""

from __future__ import annotations

__version__ = "0.1.0"

from streamlearn.config import Settings, load_settings
from streamlearn.errors import StreamlearnError

__all__ = ["Settings", "StreamlearnError", "__version__", "load_settings"]
