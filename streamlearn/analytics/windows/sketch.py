"""A mergeable quantile sketch with a relative-error guarantee (DDSketch-style).

Algorithm (Masson, Rim & Lee, "DDSketch", VLDB 2019). With relative accuracy ``a`` and
``gamma = (1 + a) / (1 - a)``, a positive ``x`` goes to bucket ``k = ceil(log_gamma x)``,
i.e. ``gamma**(k-1) < x <= gamma**k``, whose representative value is
``2 * gamma**k / (gamma + 1)``; every ``x`` of the bucket is within ``a * x`` of it.
Negative values go to a second store keyed by ``|x|``, and zeros (``0.0`` and ``-0.0``)
to a zero count. Every non-zero finite float, subnormals included, gets its own key
(about -37,000 to +35,500 at ``a = 0.01``), so there is no "too small to index" range.

**Quantile definition.** For ``n`` values sorted ascending ``x_0 <= ... <= x_{n-1}``,
the ``q``-quantile is ``x_r`` with ``r = floor(q * (n - 1))`` (numpy's
``method="lower"``). :meth:`QuantileSketch.quantile` returns the representative ``v``
of the bucket holding ``x_r``.

**Error bound.** For every ``q`` in [0, 1], ``|v - x_q| <= a * |x_q|`` (``v = 0``
exactly when ``x_q == 0``), up to floating-point rounding (a relative ``1e-12`` more,
and half a step of the subnormal range), **provided no bucket collapse happened**. A
value at the very top of the float range whose representative would overflow is
returned as ``±sys.float_info.max``, which still satisfies the bound.

**Bounded size, collapsing.** Each store (positive, negative) keeps at most
``max_buckets`` (default 2048) consecutive keys, ending at the highest key it has seen;
a value whose key is lower goes to the lowest kept key, and raising the top folds the
buckets that fall out into it. "Lowest" means smallest ``|x|``: the keys nearest zero
collapse, so the tails (p95/p99 of positive data, p1 of negative data) keep the bound
while quantiles inside the collapsed range over-estimate ``|x|``. ``max_buckets``
keys span a ratio ``gamma**max_buckets ~ exp(2 * a * max_buckets)`` between the largest
and smallest ``|x|`` of a sign: ``6e17`` at the defaults, so real data practically never
collapses; but only ``~60`` at ``a = 0.001`` with 2048 buckets: raise ``max_buckets``
when lowering ``a``. Because each value ends in
bucket ``max(k, top - max_buckets + 1)`` with ``top`` the highest key of the whole
stream, the final state does not depend on the order of the values, and
``a.merge(b)`` equals the sketch fed both streams **exactly, collapse or not**.

**Why not the ``ddsketch`` package (DataDog, 3.0.1)?** It installs and is fast enough
(about 0.65 us per ``add``), but its only serialisation is protobuf (an extra
dependency); rebuilding an exact copy from JSON means writing its private attributes
(``bins``, ``offset``, ``min_key``...); its dense stores serialise their zero bins; it
maps values below about ``2.2e-308 * gamma`` to zero; and its negative-side rank rule
differs from the positive side's. Window state is written as JSON on every flush, many
thousand times a second, so this module keeps a sparse dict per sign (~120 lines, no
dependency) with a short, exact ``to_list()`` form.

**Serialised form** (``to_list()``, JSON-able, ints except ``a``)::

    [relative_accuracy, max_buckets, zero_count, positive, negative]

where ``positive`` and ``negative`` are flat lists ``[k0, c0, d1, c1, d2, c2, ...]`` of
the non-empty buckets in ascending key order: the first key, then the gap to the
previous key (``d_i = k_i - k_{i-1} > 0``), each followed by its count. An empty sketch
at the defaults is ``[0.01, 2048, 0, [], []]``.
"""

from __future__ import annotations

import math
import sys
from bisect import bisect_right
from collections.abc import Sequence
from functools import lru_cache
from itertools import accumulate, chain
from operator import sub

__all__ = ["QuantileSketch"]

_NO_KEY = -(2**62)  # "highest key seen" of an empty store
_EMPTY_MIN = 2**62  # "lowest key present" of an empty store
_MAX_FLOAT = sys.float_info.max


@lru_cache(maxsize=16)
def _constants(relative_accuracy: float) -> tuple[float, float, float]:
    """(1 / ln gamma, ln gamma, ln(1 - a)) for an accuracy."""
    ln_gamma = math.log1p(relative_accuracy) - math.log1p(-relative_accuracy)
    return 1.0 / ln_gamma, ln_gamma, math.log1p(-relative_accuracy)


def _fold(store: dict[int, int], lowest: int) -> None:
    """Move the counts of keys below ``lowest`` into ``lowest``."""
    below = [k for k in store if k < lowest]
    if below:
        store[lowest] = store.get(lowest, 0) + sum(store.pop(k) for k in below)


def _bounds(store: dict[int, int], limit: int) -> tuple[int, int, int]:
    """(top, low, min) keys of a store after folding what lies below ``top - limit``."""
    if not store:
        return _NO_KEY, _NO_KEY - limit + 1, _EMPTY_MIN
    top = max(store)
    low = top - limit + 1
    lowest = min(store)
    if lowest < low:
        _fold(store, low)
        lowest = low
    return top, low, lowest


def _flat(store: dict[int, int]) -> list[int]:
    """``[k0, c0, k1 - k0, c1, ...]``, keys ascending."""
    if not store:
        return []
    keys = sorted(store)
    out = [0] * (2 * len(keys))
    out[0::2] = map(sub, keys, [0, *keys])
    out[1::2] = map(store.__getitem__, keys)
    return out


def _unflat(data: Sequence[int]) -> dict[int, int]:
    return dict(zip(accumulate(data[0::2]), data[1::2], strict=True))


class QuantileSketch:
    """Mergeable quantile sketch: ``|estimate - x_q| <= a * |x_q|`` (see module doc).

    Parameters
    ----------
    relative_accuracy : float
        ``a``, in (0, 1); default 0.01 (1 %).
    max_buckets : int
        Keys kept per sign before the lowest collapse; default 2048.

    Attributes
    ----------
    count : int
        Number of values added.
    zero : int
        Number of zeros added.
    pos, neg : dict of int to int
        Bucket key -> count, for positive values and for ``|x|`` of negative values.

    Examples
    --------
    >>> sketch = QuantileSketch()
    >>> for x in range(1, 101):
    ...     sketch.add(float(x))
    >>> sketch.count, round(sketch.quantile(0.5), 2), round(sketch.quantile(0.99), 2)
    (100, 49.9, 98.5)
    >>> [round(v, 2) for v in sketch.quantiles([0.0, 1.0])]
    [0.99, 100.49]
    >>> QuantileSketch().quantile(0.5) is None
    True
    >>> other = QuantileSketch()
    >>> other.add(-3.0); other.add(0.0)
    >>> merged = sketch.merge(other)   # a new sketch; both inputs unchanged
    >>> merged.count, round(merged.quantile(0.0), 2), merged.quantile(0.01)
    (102, -2.97, 0.0)
    >>> other.to_list()
    [0.01, 2048, 1, [], [55, 1]]
    >>> QuantileSketch.from_list(merged.to_list()) == merged
    True
    """

    __slots__ = (
        "_ln_gamma",
        "_ln_one_minus_a",
        "_mult",
        "_neg_low",
        "_neg_min",
        "_neg_top",
        "_pos_low",
        "_pos_min",
        "_pos_top",
        "count",
        "max_buckets",
        "neg",
        "pos",
        "relative_accuracy",
        "zero",
    )

    def __init__(self, relative_accuracy: float = 0.01, max_buckets: int = 2048) -> None:
        if not 0.0 < relative_accuracy < 1.0:
            raise ValueError(f"relative_accuracy must be in (0, 1), got {relative_accuracy!r}")
        if isinstance(max_buckets, bool) or not isinstance(max_buckets, int) or max_buckets < 1:
            raise ValueError(f"max_buckets must be an int >= 1, got {max_buckets!r}")
        self.relative_accuracy = relative_accuracy
        self.max_buckets = max_buckets
        self._mult, self._ln_gamma, self._ln_one_minus_a = _constants(relative_accuracy)
        self.count = 0
        self.zero = 0
        self.pos: dict[int, int] = {}
        self.neg: dict[int, int] = {}
        # Per store: highest key seen, lowest key kept (top - max_buckets + 1), and the
        # lowest key present, so that a new top folds only when something falls out.
        self._pos_top = self._neg_top = _NO_KEY
        self._pos_low = self._neg_low = _NO_KEY - max_buckets + 1
        self._pos_min = self._neg_min = _EMPTY_MIN

    def add(self, x: float) -> None:
        """Add one finite value; NaN raises ``ValueError``, infinity ``OverflowError``
        (and neither changes the sketch).

        Examples
        --------
        >>> s = QuantileSketch(); s.add(2.5); s.add(-1.0); s.add(0.0)
        >>> s.count, s.zero, len(s.pos), len(s.neg)
        (3, 1, 1, 1)
        """
        if x > 0.0:
            k = math.ceil(math.log(x) * self._mult)  # OverflowError for inf: nothing changed
            if k > self._pos_top:
                self._pos_top = k
                self._pos_low = low = k - self.max_buckets + 1
                if self._pos_min < low:
                    _fold(self.pos, low)
                    self._pos_min = low
            elif k < self._pos_low:
                k = self._pos_low
            store = self.pos
            c = store.get(k)
            if c is None:
                store[k] = 1
                if k < self._pos_min:
                    self._pos_min = k
            else:
                store[k] = c + 1
        elif x < 0.0:
            k = math.ceil(math.log(-x) * self._mult)
            if k > self._neg_top:
                self._neg_top = k
                self._neg_low = low = k - self.max_buckets + 1
                if self._neg_min < low:
                    _fold(self.neg, low)
                    self._neg_min = low
            elif k < self._neg_low:
                k = self._neg_low
            store = self.neg
            c = store.get(k)
            if c is None:
                store[k] = 1
                if k < self._neg_min:
                    self._neg_min = k
            else:
                store[k] = c + 1
        elif x == 0.0:
            self.zero += 1
        else:
            raise ValueError(f"cannot add {x!r} to a quantile sketch")
        self.count += 1

    def _value(self, k: int) -> float:
        """Representative of bucket ``k``: 2 gamma**k / (gamma + 1) = gamma**k (1 - a)."""
        try:
            return math.exp(k * self._ln_gamma + self._ln_one_minus_a)
        except OverflowError:
            return _MAX_FLOAT

    def quantiles(self, qs: Sequence[float]) -> list[float | None]:
        """Estimates of several quantiles in one pass over the buckets.

        Parameters
        ----------
        qs : sequence of float
            Each in [0, 1].

        Returns
        -------
        list of float or None
            One estimate per ``q``; all ``None`` when the sketch is empty.

        Raises
        ------
        ValueError
            If a ``q`` is outside [0, 1] (or NaN).

        Examples
        --------
        >>> s = QuantileSketch()
        >>> for x in (-5.0, 0.0, 1.0, 2.0, 1000.0):
        ...     s.add(x)
        >>> [None if v is None else round(v, 3) for v in s.quantiles([0.0, 0.25, 0.5, 1.0])]
        [-5.003, 0.0, 0.99, 1002.428]
        """
        for q in qs:
            if not 0.0 <= q <= 1.0:
                raise ValueError(f"quantile q must be in [0, 1], got {q!r}")
        n = self.count
        if n == 0:
            return [None] * len(qs)
        # Buckets in ascending value order: negatives by descending |x| key, the zeros,
        # positives by ascending key; ``ends`` holds the cumulative counts.
        neg, pos = self.neg, self.pos
        neg_keys = sorted(neg, reverse=True)
        pos_keys = sorted(pos)
        ends = list(
            accumulate(
                chain(map(neg.__getitem__, neg_keys), (self.zero,), map(pos.__getitem__, pos_keys))
            )
        )
        n_neg = len(neg_keys)
        out: list[float | None] = []
        for q in qs:
            i = bisect_right(ends, math.floor(q * (n - 1)))  # first bucket ending past the rank
            if i < n_neg:
                out.append(-self._value(neg_keys[i]))
            elif i == n_neg:
                out.append(0.0)
            else:
                out.append(self._value(pos_keys[i - n_neg - 1]))
        return out

    def quantile(self, q: float) -> float | None:
        """Estimate of the ``q``-quantile, ``x_r`` with ``r = floor(q * (n - 1))``.

        Returns ``None`` when the sketch is empty (JSON-friendly; no exception to
        catch when a result is rendered); raises ``ValueError`` for ``q`` outside [0, 1].

        Examples
        --------
        >>> s = QuantileSketch(relative_accuracy=0.05)
        >>> for x in (10.0, 20.0, 30.0):
        ...     s.add(x)
        >>> round(s.quantile(0.5), 3)
        19.129
        """
        return self.quantiles((q,))[0]

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        """A **new** sketch equal to one fed both streams; ``self`` and ``other`` unchanged.

        Raises ``ValueError`` if the accuracies or bucket limits differ.

        Examples
        --------
        >>> a, b, both = QuantileSketch(), QuantileSketch(), QuantileSketch()
        >>> for x in (1.0, 2.0): a.add(x); both.add(x)
        >>> for x in (-3.0, 4.0): b.add(x); both.add(x)
        >>> a.merge(b) == both
        True
        """
        if (
            other.relative_accuracy != self.relative_accuracy
            or other.max_buckets != self.max_buckets
        ):
            raise ValueError(
                "cannot merge sketches with different relative_accuracy/max_buckets: "
                f"{self.relative_accuracy}/{self.max_buckets} vs "
                f"{other.relative_accuracy}/{other.max_buckets}"
            )
        out = QuantileSketch(self.relative_accuracy, self.max_buckets)
        out.count = self.count + other.count
        out.zero = self.zero + other.zero
        out.pos = _merged(self.pos, other.pos)
        out.neg = _merged(self.neg, other.neg)
        out._reset_bounds()
        return out

    def _reset_bounds(self) -> None:
        """Top/low/min keys from the stores, folding anything below the low key."""
        limit = self.max_buckets
        self._pos_top, self._pos_low, self._pos_min = _bounds(self.pos, limit)
        self._neg_top, self._neg_low, self._neg_min = _bounds(self.neg, limit)

    def copy(self) -> QuantileSketch:
        """An independent copy.

        Examples
        --------
        >>> s = QuantileSketch(); s.add(1.0)
        >>> t = s.copy(); t.add(2.0)
        >>> s.count, t.count
        (1, 2)
        """
        return QuantileSketch.from_list(self.to_list())

    def to_list(self) -> list:
        """``[relative_accuracy, max_buckets, zero_count, positive, negative]``.

        ``positive``/``negative``: ``[k0, c0, d1, c1, ...]``, keys ascending, each key
        after the first written as the gap to the previous one.

        Examples
        --------
        >>> s = QuantileSketch()
        >>> for x in (1.0, 1.0, 1.5, 0.0):
        ...     s.add(x)
        >>> s.to_list()
        [0.01, 2048, 1, [0, 2, 21, 1], []]
        """
        return [
            self.relative_accuracy,
            self.max_buckets,
            self.zero,
            _flat(self.pos),
            _flat(self.neg),
        ]

    @classmethod
    def from_list(cls, data: Sequence) -> QuantileSketch:
        """Rebuild exactly the sketch that :meth:`to_list` described.

        Examples
        --------
        >>> QuantileSketch.from_list([0.01, 2048, 1, [0, 2, 21, 1], []]).count
        4
        """
        out = cls(data[0], data[1])
        out.zero = data[2]
        pos = out.pos = _unflat(data[3])
        neg = out.neg = _unflat(data[4])  # a written state is already folded
        out.count = out.zero + sum(pos.values()) + sum(neg.values())
        out._reset_bounds()
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QuantileSketch):
            return NotImplemented
        return (
            self.relative_accuracy == other.relative_accuracy
            and self.max_buckets == other.max_buckets
            and self.zero == other.zero
            and self.pos == other.pos
            and self.neg == other.neg
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (
            f"QuantileSketch(relative_accuracy={self.relative_accuracy}, count={self.count}, "
            f"buckets={len(self.pos) + len(self.neg) + (1 if self.zero else 0)})"
        )


def _merged(a: dict[int, int], b: dict[int, int]) -> dict[int, int]:
    out = dict(a)
    for k, c in b.items():
        out[k] = out.get(k, 0) + c
    return out
