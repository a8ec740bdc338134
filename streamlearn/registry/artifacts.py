"""The artifact store: signed model blobs, one file per blob, named by its sha256.

A blob is an envelope (:mod:`streamlearn.models.envelope`): a pickle signed with the
app's key (HMAC-SHA256) and a header with the library versions that wrote it. Nothing
is unpickled before the blob has passed every check, in this order: it is an envelope
(else "unsigned"), its signature matches (else "tampered with, or signed with another
secret key"), its sha256 is the one the metadata names, and its River and
scikit-learn major versions are the installed ones. Unpickling then resolves only an
allowlist of classes and functions (:class:`~streamlearn.models.envelope.RestrictedUnpickler`).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path
from typing import Any

from streamlearn.models.envelope import EnvelopeError, open_strict, seal, verify
from streamlearn.registry.entry import Artifact
from streamlearn.registry.errors import (
    ArtifactMissingError,
    ArtifactRefusedError,
    RegistryInputError,
)

__all__ = ["KINDS", "ArtifactStore", "is_saved_model", "kind_of"]

#: What an artifact holds, as recorded in its metadata.
KINDS = ("river", "sklearn", "pickle")
_SAVED_MODEL = ("streamlearn.models.offline.saved", "SavedModel")


def is_saved_model(obj: Any) -> bool:
    """Whether ``obj`` is a model saved by ``streamlearn train --save``."""
    cls = type(obj)
    return (cls.__module__, cls.__qualname__) == _SAVED_MODEL


def kind_of(obj: Any) -> str:
    """``"river"``, ``"sklearn"`` (also a model saved by ``streamlearn train``) or ``"pickle"``.

    >>> from river import linear_model
    >>> kind_of(linear_model.LinearRegression()), kind_of({"w": 1})
    ('river', 'pickle')
    """
    if is_saved_model(obj):
        return "sklearn"
    top = type(obj).__module__.partition(".")[0]
    return top if top in ("river", "sklearn") else "pickle"


class ArtifactStore:
    """Signed blobs under ``root``, each in a file named by its sha256.

    Examples
    --------
    >>> import tempfile
    >>> store = ArtifactStore(Path(tempfile.mkdtemp()), b"k" * 32)
    >>> art, header, obj = store.put(store.seal({"w": [0.5]}))
    >>> art.kind, len(art.sha256), header["kind"]
    ('pickle', 64, 'pickle')
    >>> store.load(art)
    {'w': [0.5]}
    >>> store.put(b"not signed")
    Traceback (most recent call last):
    ...
    streamlearn.registry.errors.ArtifactRefusedError: artifact refused: unsigned: not a \
streamlearn envelope (there is no signature)
    """

    def __init__(self, root: Path, key: bytes) -> None:
        self.root = Path(root)
        self.key = key

    def seal(self, obj: Any, kind: str | None = None) -> bytes:
        """``obj`` pickled into an envelope signed with the store's key.

        ``kind`` (one of :data:`KINDS`; default: :func:`kind_of`) goes in the header.
        """
        if kind is not None and kind not in KINDS:
            raise RegistryInputError(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
        return seal(obj, self.key, kind=kind or kind_of(obj))

    def open(self, blob: bytes) -> tuple[dict[str, Any], Any]:
        """Verify ``blob`` and unpickle it strictly: ``(header, object)``."""
        try:
            header = verify(blob, self.key)
            return header, open_strict(blob, self.key)
        except EnvelopeError as exc:
            raise ArtifactRefusedError(f"artifact refused: {exc}") from None

    def put(self, blob: bytes) -> tuple[Artifact, dict[str, Any], Any]:
        """Check ``blob`` completely (it must load), then store it: artifact, header, object."""
        header, obj = self.open(blob)
        digest = hashlib.sha256(blob).hexdigest()
        path = self.path(digest)
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{digest}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
            with tmp.open("wb") as out:
                out.write(blob)
                out.flush()
                os.fsync(out.fileno())
            tmp.replace(path)  # atomic: readers see the whole blob or none
        kind = header.get("kind") if header.get("kind") in KINDS else kind_of(obj)
        return Artifact(digest, len(blob), str(kind)), header, obj

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ArtifactRefusedError(f"{sha256!r} is not a sha256")
        return self.root / sha256

    def read(self, artifact: Artifact) -> bytes:
        """The blob of ``artifact``, checked against its sha256 (not yet verified)."""
        path = self.path(artifact.sha256)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise ArtifactMissingError(
                f"artifact {artifact.sha256} is not in {self.root} (when workers run on "
                "several machines, registry_dir must be shared storage)"
            ) from None
        digest = hashlib.sha256(blob).hexdigest()
        if digest != artifact.sha256:
            raise ArtifactRefusedError(
                f"artifact refused: tampered with: {path} has sha256 {digest}, the registry "
                f"recorded {artifact.sha256}"
            )
        return blob

    def load(self, artifact: Artifact) -> Any:
        """The object of ``artifact``, after every check (see the module docstring)."""
        return self.open(self.read(artifact))[1]
