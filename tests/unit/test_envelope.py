"""Signed envelopes: nothing unverified is ever unpickled."""

from __future__ import annotations

import pickle
import stat
from pathlib import Path

import pytest

from streamlearn.models import envelope
from streamlearn.models.envelope import EnvelopeError, load_or_create_key, open_envelope, seal

KEY = bytes(range(32))


class Boom:
    """Unpickling this would run code: the envelope must refuse before that."""

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (pytest.fail, ("an unverified pickle was loaded",))


def test_round_trip_and_header() -> None:
    blob = seal({"a": [1, 2]}, KEY, "anomaly")
    assert open_envelope(blob, KEY) == {"a": [1, 2]}
    header = envelope.read_header(blob)
    assert header["kind"] == "anomaly" and set(header["versions"]) == set(envelope.LIBRARIES)


@pytest.mark.parametrize("where", [4, 20, 40, -1])
def test_any_altered_byte_is_rejected(where: int) -> None:
    blob = bytearray(seal({"a": 1}, KEY))
    blob[where] ^= 0x01
    with pytest.raises(EnvelopeError, match="signature mismatch"):
        open_envelope(bytes(blob), KEY)


def test_wrong_key_and_foreign_bytes_are_rejected_without_unpickling() -> None:
    forged = seal(Boom(), b"attacker-key-000000000000000000")
    with pytest.raises(EnvelopeError, match="signature mismatch"):
        open_envelope(forged, KEY)
    with pytest.raises(EnvelopeError, match="not a streamlearn envelope"):
        open_envelope(pickle.dumps(Boom()), KEY)
    with pytest.raises(EnvelopeError, match="not a streamlearn envelope"):
        open_envelope(b"", KEY)


def test_other_library_versions_still_load_when_compatible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(envelope, "_VERSIONS", {**envelope._VERSIONS, "river": "0.0.1"})
    blob = seal([1.5], KEY)
    monkeypatch.undo()
    assert open_envelope(blob, KEY) == [1.5]


def test_key_file_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "secret.key"
    key = load_or_create_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == key
    path.write_text("not hex")
    with pytest.raises(EnvelopeError, match="does not hold a hex secret key"):
        load_or_create_key(path)
