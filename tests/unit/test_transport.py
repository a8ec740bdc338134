"""The consumer's commit offset when Faust's gaps overlap offsets already acked."""

from __future__ import annotations

from collections import defaultdict

from faust.types import TP
from intervaltree import IntervalTree

from streamlearn.transport import _Consumer


def _consumer(committed: int | None) -> _Consumer:
    consumer = object.__new__(_Consumer)  # only the offset bookkeeping is exercised
    consumer._acked = defaultdict(list)
    consumer._acked_index = defaultdict(set)
    consumer._gap = defaultdict(IntervalTree)
    consumer._committed_offset = defaultdict(lambda: None)
    tp = TP("events", 0)
    consumer._committed_offset[tp] = committed
    return consumer


def test_gap_over_acked_offsets_commits_everything() -> None:
    # After a rebalance's double seek: 146..160 were processed (acked) and also
    # recorded as a gap. Everything up to 160 is done, so the commit is 161.
    tp = TP("events", 0)
    consumer = _consumer(committed=145)
    consumer._acked[tp] = list(range(146, 161))
    consumer._acked_index[tp] = set(range(146, 161))
    consumer._gap[tp].addi(146, 161)
    assert consumer._new_offset(tp) == 161
    assert consumer._acked[tp] == []
    assert not consumer._gap[tp]


def test_a_real_gap_is_still_filled_and_a_hole_still_holds_the_commit() -> None:
    tp = TP("events", 0)
    consumer = _consumer(committed=9)
    consumer._acked[tp] = [10, 11, 15, 16]
    consumer._gap[tp].addi(12, 15)  # 12..14 will never be delivered (e.g. compacted)
    assert consumer._new_offset(tp) == 17
    consumer._acked[tp] = [20, 21]  # 17..19 not processed yet: nothing to commit past
    assert consumer._new_offset(tp) is None


def test_duplicate_acks_do_not_stall_the_commit() -> None:
    tp = TP("events", 0)
    consumer = _consumer(committed=0)
    consumer._acked[tp] = [1, 2, 2, 3, 3, 4]
    assert consumer._new_offset(tp) == 5
