"""Event-time window specifications, the windows an event falls in, window ids.

A window is the half-open interval ``[start, start + size)`` of epoch milliseconds.
Window starts are aligned to the epoch: every start is a multiple of the step.

* **tumbling** (``step == size``): each timestamp is in exactly one window.
* **hopping** (``step < size``, also called sliding): windows overlap. When ``size`` is
  a multiple of ``step`` each timestamp is in exactly ``size // step`` windows (5m/1m:
  5). It does not have to be: with 5m/2m the windows are ``[0, 5m)``, ``[2m, 7m)``,
  ``[4m, 9m)``..., and a timestamp is in ``floor(size/step)`` or ``ceil(size/step)``
  windows (2 or 3) depending on where it falls. Every timestamp is still covered, since
  ``step <= size``.
* ``step > size`` would leave gaps that no window covers, so it is rejected.

**No negative starts.** Event times are epoch milliseconds ``>= 0`` (ingest rejects
anything else), and windows that would begin before the epoch are never produced: a
timestamp ``ts < size - step`` is in fewer windows than usual (with 5m/1m, ``ts = 0`` is
only in ``[0, 5m)``). A negative ``ts`` raises ``ValueError``. This keeps every start
and end a non-negative integer, so ``-1`` stays usable as "nothing closed yet".

**Spec names** are canonical and URL-safe: ``tumbling-<size>`` or
``hopping-<size>-<step>``, each duration written with the largest unit that divides it
exactly (``d``, ``h``, ``m``, ``s``, else ``ms``). ``tumbling:60s``,
``tumbling:1m`` and ``hopping:1m:1m`` are all named ``tumbling-1m``, so two specs get
the same default name exactly when they define the same windows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

__all__ = ["WindowSpec", "parse_duration_ms", "window_id", "window_starts"]

_UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d)")
_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")
_UNRESERVED = re.compile(r"[A-Za-z0-9._~-]*")  # what quote(safe="") keeps


def parse_duration_ms(text: str) -> int:
    """Milliseconds in a duration such as ``500ms``, ``30s``, ``5m``, ``1h`` or ``7d``.

    A whole number followed by one of the (lower-case) units ``ms``, ``s``, ``m``,
    ``h``, ``d``; no fractions, no sign, no spaces inside.

    Parameters
    ----------
    text : str
        The duration.

    Returns
    -------
    int
        The duration in milliseconds (may be 0; callers check their own bounds).

    Raises
    ------
    ValueError
        If ``text`` is not of that form.

    Examples
    --------
    >>> parse_duration_ms("5m"), parse_duration_ms("250ms"), parse_duration_ms("1d")
    (300000, 250, 86400000)
    """
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration: a whole number and a unit, one of ms, s, m, h, d "
            "(e.g. 500ms, 30s, 5m, 1h)"
        )
    return int(match.group(1)) * _UNITS_MS[match.group(2)]


def _format_ms(ms: int) -> str:
    for unit in ("d", "h", "m", "s"):
        if ms % _UNITS_MS[unit] == 0:
            return f"{ms // _UNITS_MS[unit]}{unit}"
    return f"{ms}ms"


def window_starts(ts_ms: int, size_ms: int, step_ms: int) -> list[int]:
    """Starts of all windows ``[start, start + size_ms)`` that contain ``ts_ms``.

    Starts are multiples of ``step_ms`` (aligned to the epoch), never negative, and
    returned in ascending order; the list is never empty.

    Parameters
    ----------
    ts_ms : int
        Event time, epoch milliseconds, ``>= 0``.
    size_ms, step_ms : int
        Window size and step, ``0 < step_ms <= size_ms``.

    Returns
    -------
    list of int
        ``ceil(size/step)`` starts when ``size % step == 0`` (fewer near the epoch).

    Raises
    ------
    ValueError
        If ``ts_ms < 0`` or the size/step are out of range.

    Examples
    --------
    >>> window_starts(125_000, 60_000, 60_000)  # tumbling 1m
    [120000]
    >>> window_starts(425_000, 300_000, 60_000)  # hopping 5m every 1m: 5 windows
    [180000, 240000, 300000, 360000, 420000]
    >>> window_starts(125_000, 300_000, 60_000)  # near the epoch: no negative starts
    [0, 60000, 120000]
    """
    if ts_ms < 0:
        raise ValueError(f"ts_ms must be >= 0 (epoch milliseconds), got {ts_ms}")
    if not 0 < step_ms <= size_ms:
        raise ValueError(f"need 0 < step_ms <= size_ms, got size {size_ms}, step {step_ms}")
    last = ts_ms - ts_ms % step_ms
    if step_ms == size_ms:
        return [last]
    # Smallest multiple of step strictly greater than ts - size (ceil division).
    first = -((size_ms - ts_ms - 1) // step_ms) * step_ms
    if first < 0:
        first = 0
    return list(range(first, last + 1, step_ms))


def window_id(key: str, value_name: str, spec_name: str, start_ms: int) -> str:
    """A stable id for one window of one key and value: ``key:value:spec:start``.

    Each text part is percent-encoded (``urllib.parse.quote`` with no safe characters,
    so only ``A-Z a-z 0-9 _ . - ~`` stay as they are and ``:`` is always encoded);
    the parts are joined with ``:``. The id is therefore deterministic, injective
    (different inputs never share an id) and safe in a URL path segment or query value.

    Parameters
    ----------
    key, value_name, spec_name : str
        Event key, value name and window spec name.
    start_ms : int
        Window start, epoch milliseconds.

    Returns
    -------
    str

    Examples
    --------
    >>> window_id("sensor-1", "temp", "tumbling-1m", 1_700_000_040_000)
    'sensor-1:temp:tumbling-1m:1700000040000'
    >>> window_id("a:b/c", "t ü", "hopping-5m-1m", 0)
    'a%3Ab%2Fc:t%20%C3%BC:hopping-5m-1m:0'
    """
    return f"{_enc(key)}:{_enc(value_name)}:{_enc(spec_name)}:{int(start_ms)}"


def _enc(text: str) -> str:
    return text if _UNRESERVED.fullmatch(text) else quote(text, safe="")


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """One window definition: a name, a size and a step, in milliseconds.

    Tumbling when ``step_ms == size_ms``, hopping (sliding) when ``step_ms < size_ms``;
    ``step_ms > size_ms`` and non-positive values raise ``ValueError``. ``size_ms`` need
    not be a multiple of ``step_ms`` (see the module docstring). ``name`` must be 1-100
    characters of ``A-Z a-z 0-9 . _ -``.

    Examples
    --------
    >>> spec = WindowSpec.parse("hopping:5m:1m")
    >>> spec
    WindowSpec(name='hopping-5m-1m', size_ms=300000, step_ms=60000)
    >>> spec.kind, spec.text
    ('hopping', 'hopping:5m:1m')
    >>> spec.windows_for(425_000)
    [180000, 240000, 300000, 360000, 420000]
    >>> WindowSpec.parse("tumbling:60s").name
    'tumbling-1m'
    >>> WindowSpec("minute", 60_000, 60_000).windows_for(59_999)
    [0]
    >>> WindowSpec("bad", 60_000, 120_000)
    Traceback (most recent call last):
    ...
    ValueError: window 'bad': step 120000 ms is larger than size 60000 ms (gaps)
    """

    name: str
    size_ms: int
    step_ms: int

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ValueError(
                f"window name {self.name!r} must be 1-100 characters of A-Z a-z 0-9 . _ -"
            )
        for field in ("size_ms", "step_ms"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"window {self.name!r}: {field} must be an int, got {value!r}")
            if value <= 0:
                raise ValueError(f"window {self.name!r}: {field} must be > 0, got {value}")
        if self.step_ms > self.size_ms:
            raise ValueError(
                f"window {self.name!r}: step {self.step_ms} ms is larger than size "
                f"{self.size_ms} ms (gaps)"
            )

    @classmethod
    def parse(cls, text: str, name: str | None = None) -> WindowSpec:
        """Parse ``tumbling:SIZE`` or ``hopping:SIZE:STEP`` (units ms, s, m, h, d).

        Parameters
        ----------
        text : str
            The spec, e.g. ``tumbling:1m`` or ``hopping:5m:1m``; surrounding
            whitespace is ignored, everything else is case-sensitive.
        name : str, optional
            Overrides the canonical name (``tumbling-1m``, ``hopping-5m-1m``).

        Raises
        ------
        ValueError
            With a message saying what is wrong.

        Examples
        --------
        >>> WindowSpec.parse("tumbling:1m")
        WindowSpec(name='tumbling-1m', size_ms=60000, step_ms=60000)
        >>> WindowSpec.parse("hopping:1h:90s", name="hourly").name
        'hourly'
        >>> WindowSpec.parse("hopping:5m")
        Traceback (most recent call last):
        ...
        ValueError: 'hopping:5m': hopping needs a size and a step: hopping:SIZE:STEP
        """
        parts = text.strip().split(":")
        kind = parts[0]
        if kind == "tumbling":
            if len(parts) != 2:
                raise ValueError(f"{text!r}: tumbling takes one duration: tumbling:SIZE")
            size = step = _duration(text, parts[1])
        elif kind == "hopping":
            if len(parts) != 3:
                raise ValueError(f"{text!r}: hopping needs a size and a step: hopping:SIZE:STEP")
            size, step = _duration(text, parts[1]), _duration(text, parts[2])
        else:
            raise ValueError(
                f"{text!r}: unknown window kind {kind!r}; use tumbling:SIZE or hopping:SIZE:STEP"
            )
        if size <= 0 or step <= 0:
            raise ValueError(f"{text!r}: durations must be > 0")
        if step > size:
            raise ValueError(f"{text!r}: the step must not be larger than the size")
        if name is None:
            name = cls._canonical_name(size, step)
        return cls(name, size, step)

    @staticmethod
    def _canonical_name(size_ms: int, step_ms: int) -> str:
        if step_ms == size_ms:
            return f"tumbling-{_format_ms(size_ms)}"
        return f"hopping-{_format_ms(size_ms)}-{_format_ms(step_ms)}"

    @property
    def kind(self) -> str:
        """``"tumbling"`` when step == size, else ``"hopping"``."""
        return "tumbling" if self.step_ms == self.size_ms else "hopping"

    @property
    def text(self) -> str:
        """The canonical parseable form, e.g. ``hopping:5m:1m``."""
        if self.step_ms == self.size_ms:
            return f"tumbling:{_format_ms(self.size_ms)}"
        return f"hopping:{_format_ms(self.size_ms)}:{_format_ms(self.step_ms)}"

    def windows_for(self, ts_ms: int) -> list[int]:
        """Starts of this spec's windows containing ``ts_ms``; see :func:`window_starts`.

        Examples
        --------
        >>> WindowSpec.parse("hopping:5m:1m").windows_for(0)
        [0]
        """
        return window_starts(ts_ms, self.size_ms, self.step_ms)


def _duration(text: str, part: str) -> int:
    try:
        return parse_duration_ms(part)
    except ValueError as exc:
        raise ValueError(f"{text!r}: {exc}") from None
