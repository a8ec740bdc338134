"""The registry's errors; each carries the HTTP status the API answers it with."""

from __future__ import annotations

from streamlearn.errors import StreamlearnError


class RegistryError(StreamlearnError):
    """Root of the model registry's errors."""

    status = 500


class RegistryInputError(RegistryError):
    """A bad name, stage, version reference or metadata value."""

    status = 400


class ModelNotFoundError(RegistryError):
    """No such model name, version, or no version in the stage asked for."""

    status = 404


class TransitionError(RegistryError):
    """A stage change the lifecycle does not allow (demotion, rollback with no target...)."""

    status = 409


class ConcurrentChangeError(RegistryError):
    """Another writer changed the same model between our read and our write: retry."""

    status = 409


class ArtifactRefusedError(RegistryError):
    """An artifact that is unsigned, tampered with, or from other library majors."""

    status = 400


class ArtifactMissingError(RegistryError):
    """The metadata names an artifact that is not in this machine's artifact store."""

    status = 404


class RegistryUnavailableError(RegistryError):
    """Kafka cannot be reached, or the registry view has not caught up yet."""

    status = 503
