"""Offset marks: the idempotency half of "at-least-once delivery, exactly-once effect".

A state value remembers, per source partition, the highest source offset it has
applied. A record delivered again after a crash (offset at or below the mark) is
skipped, so replays never double-count.
"""

from __future__ import annotations


class OffsetMarks:
    """Highest applied offset per source partition.

    Examples
    --------
    >>> marks = OffsetMarks()
    >>> marks.accept(0, 10), marks.accept(0, 10), marks.accept(0, 9), marks.accept(1, 3)
    (True, False, False, True)
    >>> OffsetMarks.from_pairs(marks.to_pairs()) == marks
    True
    """

    __slots__ = ("_applied",)

    def __init__(self, applied: dict[int, int] | None = None) -> None:
        self._applied: dict[int, int] = dict(applied or {})

    def seen(self, partition: int, offset: int) -> bool:
        return offset <= self._applied.get(partition, -1)

    def accept(self, partition: int, offset: int) -> bool:
        """Record ``offset`` as applied; False (and no change) when it was already seen."""
        if offset <= self._applied.get(partition, -1):
            return False
        self._applied[partition] = offset
        return True

    def to_pairs(self) -> list[list[int]]:
        return [[p, o] for p, o in sorted(self._applied.items())]

    @classmethod
    def from_pairs(cls, pairs: list[list[int]]) -> OffsetMarks:
        return cls({int(p): int(o) for p, o in pairs})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OffsetMarks) and other._applied == self._applied

    def __repr__(self) -> str:
        return f"OffsetMarks({self._applied})"
