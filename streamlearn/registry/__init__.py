"""The model registry: versions, stages, signed artifacts (see docs/registry.md).

Metadata lives in a compacted Kafka topic (one record per model name, every worker
reads it); artifacts are signed blobs in a content-addressed store directory.
"""

from streamlearn.registry.artifacts import ArtifactStore, kind_of
from streamlearn.registry.client import RegistryClient, default_actor
from streamlearn.registry.entry import (
    STAGES,
    Artifact,
    ModelEntry,
    ModelVersion,
    StageChange,
)
from streamlearn.registry.errors import (
    ArtifactMissingError,
    ArtifactRefusedError,
    ConcurrentChangeError,
    ModelNotFoundError,
    RegistryError,
    RegistryInputError,
    RegistryUnavailableError,
    TransitionError,
)
from streamlearn.registry.topic import ensure_registry_topic

__all__ = [
    "STAGES",
    "Artifact",
    "ArtifactMissingError",
    "ArtifactRefusedError",
    "ArtifactStore",
    "ConcurrentChangeError",
    "ModelEntry",
    "ModelNotFoundError",
    "ModelVersion",
    "RegistryClient",
    "RegistryError",
    "RegistryInputError",
    "RegistryUnavailableError",
    "StageChange",
    "TransitionError",
    "default_actor",
    "ensure_registry_topic",
    "kind_of",
]
