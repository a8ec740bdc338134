"""Signed envelopes for pickled model and detector state.

Pickle runs code when it loads, so state is pickled only inside an envelope signed
with HMAC-SHA256 under the app's secret key, and the signature is checked before
anything is unpickled. The envelope also records the versions of the libraries whose
objects it holds, so a checkpoint written by another River or scikit-learn is
reported instead of failing obscurely.

Layout: ``b"SLE1"`` + 32-byte HMAC of the rest + 4-byte header length + JSON header +
pickle (protocol 5), zlib-compressed when the header says ``"zlib": true`` (payloads
over 16 KiB: model state compresses 3-10x, and a changelog record must stay under
Kafka's message size limit).
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
import secrets
import struct
import zlib
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

from streamlearn.errors import StreamlearnError

__all__ = ["EnvelopeError", "load_or_create_key", "open_envelope", "seal"]

MAGIC = b"SLE1"
#: Payloads larger than this are compressed.
COMPRESS_OVER = 16 * 1024
LIBRARIES = ("river", "scikit-learn", "numpy")


class EnvelopeError(StreamlearnError):
    """An envelope is not ours, was altered, or was signed with another key."""


def _versions() -> dict[str, str]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


_VERSIONS = _versions()


def seal(obj: Any, key: bytes, kind: str = "state") -> bytes:
    """Pickle ``obj`` into an envelope signed with ``key``.

    Examples
    --------
    >>> blob = seal({"w": [1.0, 2.0]}, b"k" * 32)
    >>> open_envelope(blob, b"k" * 32)
    {'w': [1.0, 2.0]}
    >>> open_envelope(blob, b"x" * 32)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    streamlearn.models.envelope.EnvelopeError: signature mismatch: ...
    """
    payload = pickle.dumps(obj, protocol=5)
    compressed = len(payload) > COMPRESS_OVER
    if compressed:
        payload = zlib.compress(payload, 1)
    header = orjson.dumps({"kind": kind, "versions": _VERSIONS, "zlib": compressed})
    body = struct.pack(">I", len(header)) + header + payload
    return MAGIC + hmac.digest(key, body, hashlib.sha256) + body


def read_header(blob: bytes) -> dict[str, Any]:
    """The envelope's header (kind, library versions), without verifying it."""
    if blob[:4] != MAGIC or len(blob) < 40:
        raise EnvelopeError("not a streamlearn envelope")
    (size,) = struct.unpack(">I", blob[36:40])
    return orjson.loads(blob[40 : 40 + size])


def open_envelope(blob: bytes, key: bytes) -> Any:
    """Verify ``blob``'s signature, then unpickle its object; :class:`EnvelopeError` if not ours."""
    if blob[:4] != MAGIC or len(blob) < 40:
        raise EnvelopeError("not a streamlearn envelope")
    body = blob[36:]
    if not hmac.compare_digest(blob[4:36], hmac.digest(key, body, hashlib.sha256)):
        raise EnvelopeError(
            "signature mismatch: the state was signed with another secret key or altered"
        )
    header = read_header(blob)
    (size,) = struct.unpack(">I", blob[36:40])
    payload = blob[40 + size :]
    if header.get("zlib"):
        payload = zlib.decompress(payload)
    written = header.get("versions", {})
    if written == _VERSIONS:
        return pickle.loads(payload)
    changed = {k: f"{written.get(k)} -> {v}" for k, v in _VERSIONS.items() if written.get(k) != v}
    try:
        return pickle.loads(payload)
    except Exception as exc:
        raise EnvelopeError(f"written with other library versions ({changed}): {exc}") from exc


def load_or_create_key(path: Path) -> bytes:
    """The secret key kept at ``path``; created (random, mode 0600) when missing."""
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    except ValueError as exc:
        raise EnvelopeError(f"{path} does not hold a hex secret key: {exc}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(key.hex())
    tmp.chmod(0o600)
    tmp.replace(path)
    return key
