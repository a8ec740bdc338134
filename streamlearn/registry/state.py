"""The registry as read from its topic: one record per change, applied in offset order.

Record layout (compacted topic, one partition): key = the model name (UTF-8), value =
the JSON document of every version of that name (:meth:`ModelEntry.to_dict`) with a
``revision`` counter. A writer reads to the end, applies its change and writes
``revision + 1``. A reader accepts a record only when its revision is higher than the
one it holds (the first of two equal revisions wins), so a writer that raced another
one sees its record ignored by everybody, reports a concurrent change, and re-publishes
the winner's document so that compaction (which keeps the last record per key) keeps
the winner. A tombstone (no value) removes the name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import orjson

from streamlearn.registry.entry import ModelEntry
from streamlearn.registry.errors import RegistryInputError

__all__ = ["RegistryState", "decode", "encode"]

log = logging.getLogger(__name__)


def encode(entry: ModelEntry) -> tuple[bytes, bytes]:
    """The record (key, value) of ``entry``."""
    return entry.name.encode(), orjson.dumps(entry.to_dict())


def decode(key: bytes | None, value: bytes) -> ModelEntry:
    """The entry in a record value; :class:`RegistryInputError` if it is not one."""
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise RegistryInputError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise RegistryInputError("not a JSON object")
    entry = ModelEntry.from_dict(doc)
    if key is not None and key != entry.name.encode():
        raise RegistryInputError(f"key {key!r} does not match the name {entry.name!r}")
    return entry


@dataclass
class RegistryState:
    """Every model entry, with the offset of the record each one was accepted from.

    Examples
    --------
    >>> from streamlearn.registry.entry import Artifact
    >>> state = RegistryState()
    >>> entry = ModelEntry("m", revision=1)
    >>> _ = entry.add(Artifact("0" * 64, 1, "pickle"), at="t")
    >>> state.apply(*encode(entry), offset=0)
    True
    >>> rival = ModelEntry("m", revision=1)  # written from the same base: loses
    >>> state.apply(*encode(rival), offset=1), state.accepted["m"], state.last["m"]
    (False, 0, 1)
    >>> len(state.entries["m"].versions)
    1
    """

    entries: dict[str, ModelEntry] = field(default_factory=dict)
    #: name -> offset of the record its entry comes from.
    accepted: dict[str, int] = field(default_factory=dict)
    #: name -> offset of its last record, accepted or not.
    last: dict[str, int] = field(default_factory=dict)

    def apply(self, key: bytes | None, value: bytes | None, offset: int) -> bool:
        """Apply one record; whether it was accepted."""
        if value is None:  # tombstone
            if key is None:
                return False
            name = key.decode(errors="replace")
            self.entries.pop(name, None)
            self.accepted.pop(name, None)
            self.last[name] = offset
            return True
        try:
            entry = decode(key, value)
        except RegistryInputError as exc:
            log.warning("model registry: record at offset %d ignored: %s", offset, exc)
            return False
        self.last[entry.name] = offset
        current = self.entries.get(entry.name)
        if current is not None and entry.revision <= current.revision:
            return False
        self.entries[entry.name] = entry
        self.accepted[entry.name] = offset
        return True
