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
import io
import pickle
import re
import secrets
import struct
import types
import zlib
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

from streamlearn.errors import StreamlearnError

__all__ = [
    "EnvelopeError",
    "ForbiddenGlobalError",
    "IncompatibleVersionsError",
    "SignatureError",
    "UnsignedError",
    "incompatible_versions",
    "load_or_create_key",
    "open_envelope",
    "open_strict",
    "seal",
    "verify",
]

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


# --- strict verification and loading (the model registry) ------------------------------
# Additions: seal/open_envelope above keep their behaviour (checkpoints use them).


class UnsignedError(EnvelopeError):
    """Bytes that are not an envelope at all (a bare pickle, anything else)."""


class SignatureError(EnvelopeError):
    """An envelope altered after it was signed, or signed with another key."""


class IncompatibleVersionsError(EnvelopeError):
    """An envelope written under another major version of River or scikit-learn."""


class ForbiddenGlobalError(EnvelopeError):
    """A signed pickle naming a class or function outside the strict loader's allowlist."""


#: Libraries whose major version must match the installed one for :func:`open_strict`.
STRICT_LIBRARIES = ("river", "scikit-learn")
#: Packages whose classes and functions a strictly loaded pickle may name.
SAFE_PACKAGES = frozenset({"river", "sklearn", "numpy", "scipy", "streamlearn"})
#: Standard-library names real River and scikit-learn models need (probed, see tests).
SAFE_GLOBALS = frozenset(
    [("builtins", n) for n in ("bool", "bytearray", "bytes", "complex", "dict", "float")]
    + [("builtins", n) for n in ("frozenset", "int", "list", "object", "range", "set")]
    + [("builtins", n) for n in ("slice", "str", "tuple")]
    + [("collections", n) for n in ("Counter", "OrderedDict", "defaultdict", "deque")]
    + [("copyreg", n) for n in ("_reconstructor", "__newobj__", "__newobj_ex__")]
    + [("datetime", n) for n in ("date", "datetime", "time", "timedelta", "timezone")]
    + [("functools", "partial"), ("random", "Random"), ("statistics", "NormalDist")]
    + [("decimal", "Decimal"), ("fractions", "Fraction"), ("uuid", "UUID")]
    + [("_codecs", "encode")]  # numpy arrays pickled with protocol < 3
)
# Even inside the safe packages: modules and names that touch files, the network or
# other processes (numpy.load, numpy.ctypeslib.load_library, sklearn.datasets.fetch_*,
# the broker tools...).
_UNSAFE_PARTS = frozenset(
    {"testing", "_testing", "tests", "conftest", "f2py", "distutils", "ctypeslib"}
    | {"datasets", "_pytesttester", "kafka", "cli", "demo", "replay", "tail", "worker"}
)
_UNSAFE_NAME = re.compile(
    r"^(load|save|open|exec|eval|system|popen|spawn|fetch|download|dump|runstring|memmap"
    r"|DataSource|fromfile|tofile|genfromtxt|read_|write)"
)


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only allowlisted classes and functions.

    Defense in depth behind the signature: even a pickle signed with the right key
    cannot name ``os.system``, ``builtins.exec`` or ``numpy.load``.

    Examples
    --------
    >>> RestrictedUnpickler(io.BytesIO(pickle.dumps({"a": [1.5]}))).load()
    {'a': [1.5]}
    >>> import os
    >>> RestrictedUnpickler(io.BytesIO(pickle.dumps(os.system))).load()
    Traceback (most recent call last):
    ...
    streamlearn.models.envelope.ForbiddenGlobalError: refused to load posix.system: ...
    """

    def __init__(self, file: Any, packages: frozenset[str] = SAFE_PACKAGES) -> None:
        super().__init__(file)
        self.packages = packages

    def _refuse(self, module: str, name: str) -> ForbiddenGlobalError:
        return ForbiddenGlobalError(
            f"refused to load {module}.{name}: not a class or function a model may name "
            f"(allowed: {', '.join(sorted(self.packages))} and a few standard types)"
        )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in SAFE_GLOBALS:
            return super().find_class(module, name)
        names = name.split(".")
        if (
            module.partition(".")[0] not in self.packages
            or _UNSAFE_PARTS.intersection(module.split("."))
            or any(_UNSAFE_NAME.match(part) or part.startswith("__") for part in names[:-1])
            or _UNSAFE_NAME.match(names[-1])
        ):
            raise self._refuse(module, name)
        obj = super().find_class(module, name)
        owner = getattr(obj, "__module__", None)
        if (
            isinstance(obj, types.ModuleType)
            or not isinstance(owner, str)
            or owner.partition(".")[0] not in self.packages
            or _UNSAFE_PARTS.intersection(owner.split("."))
        ):
            raise self._refuse(module, name)  # e.g. a safe module's `from os import system`
        return obj


def verify(blob: bytes, key: bytes) -> dict[str, Any]:
    """Check that ``blob`` is an envelope signed with ``key``; its header. Unpickles nothing.

    Examples
    --------
    >>> verify(seal([1], b"k" * 32, kind="river"), b"k" * 32)["kind"]
    'river'
    >>> verify(pickle.dumps([1]), b"k" * 32)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    streamlearn.models.envelope.UnsignedError: unsigned: ...
    >>> verify(seal([1], b"k" * 32), b"x" * 32)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    streamlearn.models.envelope.SignatureError: signature mismatch: ...
    """
    if blob[:4] != MAGIC or len(blob) < 40:
        raise UnsignedError("unsigned: not a streamlearn envelope (there is no signature)")
    if not hmac.compare_digest(blob[4:36], hmac.digest(key, blob[36:], hashlib.sha256)):
        raise SignatureError("signature mismatch: tampered with, or signed with another secret key")
    (size,) = struct.unpack(">I", blob[36:40])
    try:
        header = orjson.loads(blob[40 : 40 + size]) if 40 + size <= len(blob) else None
    except orjson.JSONDecodeError:
        header = None
    if not isinstance(header, dict):
        raise EnvelopeError("signed, but its header is not a JSON object")
    return header


def major_version(version: str) -> str:
    """The part of a version that breaks pickles: the major, or ``0.minor`` for 0.x.

    >>> major_version("1.5.2"), major_version("0.26.1"), major_version("absent")
    ('1', '0.26', 'absent')
    """
    parts = version.split(".")
    return f"0.{parts[1]}" if parts[0] == "0" and len(parts) > 1 else parts[0]


def incompatible_versions(header: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """``{library: (written, installed)}`` for each strict library whose major differs."""
    written = header.get("versions")
    if not isinstance(written, dict):
        return {}
    out = {}
    for library in STRICT_LIBRARIES:
        then, now = written.get(library), _VERSIONS.get(library, "absent")
        if not then or then == "absent" or now == "absent":
            continue
        if major_version(str(then)) != major_version(now):
            out[library] = (str(then), now)
    return out


def open_strict(blob: bytes, key: bytes, packages: frozenset[str] = SAFE_PACKAGES) -> Any:
    """Verify ``blob`` completely, then unpickle it with :class:`RestrictedUnpickler`.

    Refused before anything is unpickled: bytes that are not an envelope
    (:class:`UnsignedError`), a wrong signature (:class:`SignatureError`), a header
    naming another major version of River or scikit-learn than the installed ones
    (:class:`IncompatibleVersionsError`). While unpickling: any global outside the
    allowlist (:class:`ForbiddenGlobalError`).

    Examples
    --------
    >>> open_strict(seal({"w": [0.5]}, b"k" * 32), b"k" * 32)
    {'w': [0.5]}
    """
    header = verify(blob, key)
    changed = incompatible_versions(header)
    if changed:
        said = "; ".join(f"{lib} {then} (installed: {now})" for lib, (then, now) in changed.items())
        raise IncompatibleVersionsError(
            f"written with another major version: {said}; refused without unpickling it"
        )
    (size,) = struct.unpack(">I", blob[36:40])
    payload = blob[40 + size :]
    try:
        if header.get("zlib"):
            payload = zlib.decompress(payload)
        return RestrictedUnpickler(io.BytesIO(payload), packages).load()
    except EnvelopeError:
        raise
    except Exception as exc:
        raise EnvelopeError(f"signed, but it does not unpickle here: {exc!r}") from None
