"""What a feature pipeline computes: :class:`FeatureConfig`, built from a JSON-able dict.

One frozen dataclass per family (:class:`RawConfig`, :class:`TemporalConfig`,
:class:`WindowConfig`, :class:`FrequencyConfig`, :class:`SpatialConfig`,
:class:`CategoricalConfig`). In the dict form (the ``model_features`` setting), a
family's entry is an object of its settings, ``true`` (its defaults) or ``false`` /
``null`` (off); a family left out keeps its default: raw and temporal on, the others off.
So ``{}`` is a working configuration.

Every check raises :class:`FeatureError` whose message starts with the path of the bad
field, e.g. ``window.size: ...``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, NoReturn

from streamlearn.errors import StreamlearnError

__all__ = [
    "CategoricalConfig",
    "FeatureConfig",
    "FeatureError",
    "FrequencyConfig",
    "RawConfig",
    "SpatialConfig",
    "TemporalConfig",
    "WindowConfig",
    "parse_duration_ms",
]

#: Largest ring buffer (values kept per value name and key) any family may ask for.
MAX_HISTORY = 4096
CYCLES = ("hour", "weekday", "yearday")
WINDOW_STATS = ("count", "mean", "std", "min", "max", "z")
UNITS = ("event", "hz")
_UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d)")


class FeatureError(StreamlearnError):
    """A feature configuration or argument is not allowed; the message names the field."""


def _fail(path: str, message: str) -> NoReturn:
    raise FeatureError(f"{path}: {message}")


def parse_duration_ms(text: str, path: str = "duration") -> int:
    """Milliseconds in a duration such as ``500ms``, ``30s``, ``5m``, ``1h`` or ``7d``.

    Parameters
    ----------
    text
        A whole number followed by one of the units ``ms``, ``s``, ``m``, ``h``, ``d``.
    path
        The field being parsed, named in the error.

    Returns
    -------
    int
        The duration in milliseconds (> 0).

    Raises
    ------
    FeatureError
        If ``text`` is not of that form or is zero.

    Examples
    --------
    >>> parse_duration_ms("5m"), parse_duration_ms("250ms")
    (300000, 250)
    >>> parse_duration_ms("5 minutes", "window.duration")
    Traceback (most recent call last):
    ...
    streamlearn.models.features.config.FeatureError: window.duration: '5 minutes' is not a \
duration: a whole number and a unit, one of ms, s, m, h, d (e.g. 30s, 5m, 1h)
    """
    match = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        _fail(
            path,
            f"{text!r} is not a duration: a whole number and a unit, one of ms, s, m, h, d "
            "(e.g. 30s, 5m, 1h)",
        )
    ms = int(match.group(1)) * _UNITS_MS[match.group(2)]
    if ms <= 0:
        _fail(path, f"must be longer than 0, got {text!r}")
    return ms


def _int(path: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        _fail(path, f"must be an integer in [{lo}, {hi}], got {value!r}")
    return value


def _bool(path: str, value: Any) -> bool:
    if not isinstance(value, bool):
        _fail(path, f"must be true or false, got {value!r}")
    return value


def _number(path: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        _fail(path, f"must be a finite number, got {value!r}")
    return float(value)


def _name(path: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        _fail(path, f"must be a non-empty string, got {value!r}")
    return value


def _names(path: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        _fail(path, f"must be a list of strings, got {value!r}")
    names = tuple(_name(f"{path}[{i}]", v) for i, v in enumerate(value))
    if len(set(names)) != len(names):
        _fail(path, f"has duplicates: {list(names)}")
    return names


def _pairs(path: str, value: Any) -> tuple[tuple[str, Any], ...]:
    """A JSON object (or the tuple of pairs it was stored as) as ``(name, value)`` pairs."""
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in value):
        items = list(value)
    else:
        _fail(path, f"must be an object, got {value!r}")
    names = [_name(f"{path} key", name) for name, _ in items]
    if len(set(names)) != len(names):
        _fail(path, f"has duplicate names: {names}")
    return tuple(items)


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


@dataclass(frozen=True, slots=True)
class RawConfig:
    """Raw values passed through, as ``<prefix><name>``.

    Examples
    --------
    >>> RawConfig(prefix="v_")
    RawConfig(prefix='v_')
    """

    prefix: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.prefix, str):
            _fail("raw.prefix", f"must be a string, got {self.prefix!r}")


@dataclass(frozen=True, slots=True)
class TemporalConfig:
    """Calendar and per-value history features.

    Parameters
    ----------
    cyclical
        Cycles encoded as ``<cycle>_sin`` / ``<cycle>_cos`` of the event time (UTC):
        ``hour`` (time of day), ``weekday`` (time of week, Monday 00:00 = 0),
        ``yearday`` (time of year, 365.2425 days).
    since_last
        ``since_last_s``: seconds since the key's previous event.
    lags
        ``<name>_lag1`` ... ``<name>_lag<k>``: the value's previous ``k`` values.
    delta
        ``<name>_delta``: the value minus its previous value.
    ewma_alphas
        Smoothing factors in (0, 1]: ``<name>_ewma_<alpha>``.
    ewma_half_lives
        Half-lives: a number of values (``20`` -> ``<name>_ewma_hl20``) or an event-time
        duration (``"5m"`` -> ``<name>_ewma_hl5m``, decay by elapsed time).

    Examples
    --------
    >>> TemporalConfig(lags=2, ewma_half_lives=[10, "5m"]).ewma_half_lives
    (10, '5m')
    >>> TemporalConfig(cyclical=["hour", "minute"])
    Traceback (most recent call last):
    ...
    streamlearn.models.features.config.FeatureError: temporal.cyclical[1]: must be one of \
hour, weekday, yearday, got 'minute'
    """

    cyclical: tuple[str, ...] = ("hour", "weekday")
    since_last: bool = True
    lags: int = 0
    delta: bool = True
    ewma_alphas: tuple[float, ...] = ()
    ewma_half_lives: tuple[int | str, ...] = ()

    def __post_init__(self) -> None:
        cyclical = _names("temporal.cyclical", self.cyclical)
        for i, c in enumerate(cyclical):
            if c not in CYCLES:
                _fail(f"temporal.cyclical[{i}]", f"must be one of {', '.join(CYCLES)}, got {c!r}")
        _set(self, "cyclical", cyclical)
        _bool("temporal.since_last", self.since_last)
        _int("temporal.lags", self.lags, 0, 64)
        _bool("temporal.delta", self.delta)
        alphas = _list("temporal.ewma_alphas", self.ewma_alphas)
        for i, a in enumerate(alphas):
            if not 0.0 < _number(f"temporal.ewma_alphas[{i}]", a) <= 1.0:
                _fail(f"temporal.ewma_alphas[{i}]", f"must be in (0, 1], got {a!r}")
        _set(self, "ewma_alphas", tuple(float(a) for a in alphas))
        half_lives = _list("temporal.ewma_half_lives", self.ewma_half_lives)
        for i, h in enumerate(half_lives):
            path = f"temporal.ewma_half_lives[{i}]"
            if isinstance(h, str):
                parse_duration_ms(h, path)
            elif isinstance(h, bool) or not isinstance(h, int | float) or not 0 < h <= 1e9:
                _fail(path, f"must be a number of values > 0 or a duration like '5m', got {h!r}")
        _set(self, "ewma_half_lives", tuple(half_lives))
        if len({f"{a:g}" for a in alphas}) != len(alphas):
            _fail("temporal.ewma_alphas", f"has duplicates: {list(alphas)}")
        if len({h if isinstance(h, str) else f"{h:g}" for h in half_lives}) != len(half_lives):
            _fail("temporal.ewma_half_lives", f"has duplicates: {list(half_lives)}")


def _list(path: str, value: Any) -> tuple[Any, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        _fail(path, f"must be a list, got {value!r}")
    return tuple(value)


@dataclass(frozen=True, slots=True)
class WindowConfig:
    """Statistics of each value over its trailing window of past values.

    The window holds the value's last ``size`` values and, with ``duration``, only those
    whose event time is later than ``ts - duration``. Features ``<name>_win_<stat>``.

    Parameters
    ----------
    size
        Values kept (the window's bound in memory).
    duration
        Event-time length (``"5m"``), or ``None`` for the last ``size`` values only.
    stats
        Any of ``count``, ``mean``, ``std`` (sample, ddof=1), ``min``, ``max``, ``z``
        (current value against the window's mean and std).
    quantiles
        Probabilities in [0, 1]: ``<name>_win_p50`` for 0.5 (linear interpolation).
    min_count
        Values the window needs before any of its features is given.

    Examples
    --------
    >>> WindowConfig(duration="5m").duration_ms
    300000
    >>> WindowConfig(quantiles=[0.5, 1.5])
    Traceback (most recent call last):
    ...
    streamlearn.models.features.config.FeatureError: window.quantiles[1]: must be in [0, 1], \
got 1.5
    """

    size: int = 64
    duration: str | None = None
    stats: tuple[str, ...] = ("mean", "std", "min", "max", "z")
    quantiles: tuple[float, ...] = (0.5, 0.9)
    min_count: int = 2
    duration_ms: int | None = field(default=None, init=False, compare=False)

    def __post_init__(self) -> None:
        _int("window.size", self.size, 2, MAX_HISTORY)
        if self.duration is not None:
            _set(self, "duration_ms", parse_duration_ms(self.duration, "window.duration"))
        stats = _names("window.stats", self.stats)
        for i, s in enumerate(stats):
            if s not in WINDOW_STATS:
                _fail(f"window.stats[{i}]", f"must be one of {', '.join(WINDOW_STATS)}, got {s!r}")
        _set(self, "stats", stats)
        quantiles = _list("window.quantiles", self.quantiles)
        for i, q in enumerate(quantiles):
            if not 0.0 <= _number(f"window.quantiles[{i}]", q) <= 1.0:
                _fail(f"window.quantiles[{i}]", f"must be in [0, 1], got {q!r}")
        if len({quantile_label(q) for q in quantiles}) != len(quantiles):
            _fail("window.quantiles", f"has duplicates: {list(quantiles)}")
        _set(self, "quantiles", tuple(float(q) for q in quantiles))
        _int("window.min_count", self.min_count, 1, self.size)
        if "std" in stats or "z" in stats:
            _int("window.min_count", self.min_count, 2, self.size)


def quantile_label(q: float) -> str:
    """``p50`` for 0.5, ``p99.9`` for 0.999.

    Examples
    --------
    >>> quantile_label(0.5), quantile_label(0.999), quantile_label(1)
    ('p50', 'p99.9', 'p100')
    """
    return f"p{round(q * 100, 6):g}"


@dataclass(frozen=True, slots=True)
class FrequencyConfig:
    """Spectrum of each value's last ``size`` values (numpy FFT), once it has ``size``.

    Parameters
    ----------
    values
        Value names to analyse; ``None``: every value the pipeline tracks.
    size
        Values per spectrum (ring buffer length), a power of two is fastest.
    bands
        ``{name: [low, high]}``, frequencies in ``unit``: ``<value>_fft_<name>``, the
        fraction of the spectrum's energy in ``[low, high)`` (the Nyquist bin counts in a
        band ending at the Nyquist frequency).
    dominant
        ``<value>_fft_dominant``: the frequency of the largest non-DC bin.
    entropy
        ``<value>_fft_entropy``: normalised spectral entropy in [0, 1].
    unit
        ``event``: cycles per value (0 to 0.5); ``hz``: cycles per second, from the mean
        spacing of the buffered values' event times.

    Examples
    --------
    >>> FrequencyConfig(bands={"slow": [0, 0.1], "fast": [0.1, 0.5]}).bands
    (('slow', 0.0, 0.1), ('fast', 0.1, 0.5))
    >>> FrequencyConfig(bands={"slow": [0.2, 0.1]})
    Traceback (most recent call last):
    ...
    streamlearn.models.features.config.FeatureError: frequency.bands.slow: must be [low, high] \
with 0 <= low < high, got [0.2, 0.1]
    """

    values: tuple[str, ...] | None = None
    size: int = 32
    bands: tuple[tuple[str, float, float], ...] = (
        ("low", 0.0, 0.1),
        ("mid", 0.1, 0.25),
        ("high", 0.25, 0.5),
    )
    dominant: bool = True
    entropy: bool = True
    unit: str = "event"

    def __post_init__(self) -> None:
        if self.values is not None:
            _set(self, "values", _names("frequency.values", self.values))
        _int("frequency.size", self.size, 4, MAX_HISTORY)
        bands = []
        if isinstance(self.bands, tuple) and all(
            isinstance(b, tuple) and len(b) == 3 for b in self.bands
        ):
            pairs: Any = tuple((b[0], list(b[1:])) for b in self.bands)
        else:
            pairs = self.bands
        for name, edges in _pairs("frequency.bands", pairs):
            path = f"frequency.bands.{name}"
            if (
                not isinstance(edges, list | tuple)
                or len(edges) != 2
                or not all(
                    isinstance(e, int | float) and not isinstance(e, bool) and math.isfinite(e)
                    for e in edges
                )
                or not 0 <= edges[0] < edges[1]
            ):
                _fail(path, f"must be [low, high] with 0 <= low < high, got {edges!r}")
            bands.append((name, float(edges[0]), float(edges[1])))
        _set(self, "bands", tuple(bands))
        _bool("frequency.dominant", self.dominant)
        _bool("frequency.entropy", self.entropy)
        if self.unit not in UNITS:
            _fail("frequency.unit", f"must be one of {', '.join(UNITS)}, got {self.unit!r}")


@dataclass(frozen=True, slots=True)
class SpatialConfig:
    """Movement features from two values holding latitude and longitude (degrees).

    Parameters
    ----------
    lat, lon
        The value names of the coordinates.
    references
        ``{name: [lat, lon]}``: ``geo_dist_<name>_m``, the distance to each point.

    Examples
    --------
    >>> SpatialConfig(references={"paris": [48.8566, 2.3522]}).references
    (('paris', 48.8566, 2.3522),)
    >>> SpatialConfig(references={"x": [95, 0]})
    Traceback (most recent call last):
    ...
    streamlearn.models.features.config.FeatureError: spatial.references.x: must be [lat, lon] \
with lat in [-90, 90] and lon in [-180, 180], got [95, 0]
    """

    lat: str = "lat"
    lon: str = "lon"
    references: tuple[tuple[str, float, float], ...] = ()

    def __post_init__(self) -> None:
        _name("spatial.lat", self.lat)
        _name("spatial.lon", self.lon)
        if self.lat == self.lon:
            _fail("spatial.lon", f"must differ from spatial.lat, both are {self.lat!r}")
        refs = self.references
        if isinstance(refs, tuple) and all(isinstance(r, tuple) and len(r) == 3 for r in refs):
            refs = tuple((r[0], list(r[1:])) for r in refs)
        points = []
        for name, point in _pairs("spatial.references", refs):
            if not (
                isinstance(point, list | tuple)
                and len(point) == 2
                and all(isinstance(c, int | float) and not isinstance(c, bool) for c in point)
                and valid_point(float(point[0]), float(point[1]))
            ):
                _fail(
                    f"spatial.references.{name}",
                    "must be [lat, lon] with lat in [-90, 90] and lon in [-180, 180], "
                    f"got {point!r}",
                )
            points.append((name, float(point[0]), float(point[1])))
        _set(self, "references", tuple(points))


def valid_point(lat: float, lon: float) -> bool:
    """Whether ``(lat, lon)`` are finite degrees in range.

    Examples
    --------
    >>> valid_point(48.8, 2.3), valid_point(91.0, 0.0), valid_point(0.0, float("nan"))
    (True, False, False)
    """
    return -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0


@dataclass(frozen=True, slots=True)
class CategoricalConfig:
    """Encodings of the event's ``attrs`` (string attributes).

    Parameters
    ----------
    one_hot
        ``{attr: [vocabulary]}``: ``attr_<attr>=<word>`` for each word, 1.0 for the
        attribute's value and 0.0 for the others, plus ``attr_<attr>=_other`` (1.0 for a
        value outside the vocabulary). All 0.0 when the attribute is missing.
    hash_attrs
        Attributes hashed into buckets (``None``: every attribute not one-hot encoded).
    hash_buckets
        ``attr_hash<i>`` for ``i`` in ``0 .. hash_buckets - 1``: how many of those
        attributes' ``attr=value`` strings hash (CRC-32) to bucket ``i``. 0: no hashing.

    Examples
    --------
    >>> CategoricalConfig(one_hot={"color": ["red", "green"]}).one_hot
    (('color', ('red', 'green')),)
    """

    one_hot: tuple[tuple[str, tuple[str, ...]], ...] = ()
    hash_attrs: tuple[str, ...] | None = None
    hash_buckets: int = 16

    def __post_init__(self) -> None:
        vocab = []
        for attr, words in _pairs("categorical.one_hot", self.one_hot):
            path = f"categorical.one_hot.{attr}"
            words = _names(path, words)
            if "_other" in words:
                _fail(path, "'_other' is reserved for values outside the vocabulary")
            vocab.append((attr, words))
        _set(self, "one_hot", tuple(vocab))
        if self.hash_attrs is not None:
            _set(self, "hash_attrs", _names("categorical.hash_attrs", self.hash_attrs))
        _int("categorical.hash_buckets", self.hash_buckets, 0, 4096)


#: The families: config field name -> class; ``raw`` and ``temporal`` are on by default.
FAMILIES: dict[str, type] = {
    "raw": RawConfig,
    "temporal": TemporalConfig,
    "window": WindowConfig,
    "frequency": FrequencyConfig,
    "spatial": SpatialConfig,
    "categorical": CategoricalConfig,
}


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    """The whole feature pipeline: which values, which families.

    Parameters
    ----------
    values
        Value names to featurise; ``None``: every value of each event.
    max_values
        History is kept for at most this many value names per key (the first seen);
        later names still get raw features. Bounds a key's memory.
    raw, temporal, window, frequency, spatial, categorical
        Each family's settings, ``None`` when it is off.

    Examples
    --------
    >>> cfg = FeatureConfig.from_dict({})
    >>> cfg.raw, cfg.window
    (RawConfig(prefix=''), None)
    >>> cfg = FeatureConfig.from_dict({"values": ["temp"], "window": {"duration": "5m"},
    ...                                "temporal": False})
    >>> cfg.window.duration_ms, cfg.temporal
    (300000, None)
    >>> FeatureConfig.from_dict({"window": {"size": 1}})
    Traceback (most recent call last):
    ...
    streamlearn.models.features.config.FeatureError: window.size: must be an integer in \
[2, 4096], got 1
    >>> FeatureConfig.from_dict({"windows": {}})
    Traceback (most recent call last):
    ...
    streamlearn.models.features.config.FeatureError: windows: unknown feature setting; known: \
categorical, frequency, max_values, raw, spatial, temporal, values, window
    """

    values: tuple[str, ...] | None = None
    max_values: int = 32
    raw: RawConfig | None = field(default_factory=RawConfig)
    temporal: TemporalConfig | None = field(default_factory=TemporalConfig)
    window: WindowConfig | None = None
    frequency: FrequencyConfig | None = None
    spatial: SpatialConfig | None = None
    categorical: CategoricalConfig | None = None

    def __post_init__(self) -> None:
        if self.values is not None:
            _set(self, "values", _names("values", self.values))
        _int("max_values", self.max_values, 1, 1024)
        for name, cls in FAMILIES.items():
            value = getattr(self, name)
            if value is not None and not isinstance(value, cls):
                _fail(name, f"must be a {cls.__name__} or None, got {value!r}")
        if self.frequency is not None and self.frequency.values is not None and self.values:
            for i, name in enumerate(self.frequency.values):
                if name not in self.values:
                    _fail(f"frequency.values[{i}]", f"{name!r} is not one of values")

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any] | None) -> FeatureConfig:
        """A configuration from its JSON-able form (``None`` or ``{}``: the defaults)."""
        if doc is None:
            return cls()
        if not isinstance(doc, Mapping):
            _fail("features", f"must be a JSON object, got {type(doc).__name__}")
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for name, value in doc.items():
            if name not in known:
                _fail(str(name), f"unknown feature setting; known: {', '.join(sorted(known))}")
            family = FAMILIES.get(name)
            kwargs[name] = value if family is None else _family(name, family, value)
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> FeatureConfig:
        """A configuration from JSON text.

        Examples
        --------
        >>> FeatureConfig.from_json('{"raw": {"prefix": "x_"}}').raw.prefix
        'x_'
        """
        try:
            doc = json.loads(text)
        except (TypeError, ValueError) as exc:
            _fail("features", f"not valid JSON: {exc}")
        return cls.from_dict(doc)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form; ``FeatureConfig.from_dict(c.to_dict()) == c``.

        Examples
        --------
        >>> cfg = FeatureConfig.from_dict({"spatial": {"references": {"hq": [1.5, 2.0]}}})
        >>> cfg.to_dict()["spatial"]
        {'lat': 'lat', 'lon': 'lon', 'references': {'hq': [1.5, 2.0]}}
        >>> FeatureConfig.from_dict(cfg.to_dict()) == cfg
        True
        """
        doc: dict[str, Any] = {
            "values": None if self.values is None else list(self.values),
            "max_values": self.max_values,
        }
        for name in FAMILIES:
            family = getattr(self, name)
            doc[name] = False if family is None else _family_doc(family)
        return doc

    def fingerprint(self) -> str:
        """A short digest of the configuration: states are tied to the one that made them."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _family(name: str, cls: type, value: Any) -> Any:
    if value is None or value is False:
        return None
    if value is True:
        return cls()
    if not isinstance(value, Mapping):
        _fail(name, f"must be an object, true or false, got {value!r}")
    known = {f.name for f in fields(cls) if f.init}
    for key in value:
        if key not in known:
            _fail(f"{name}.{key}", f"unknown setting; known: {', '.join(sorted(known))}")
    return cls(**value)


def _family_doc(family: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for f in fields(family):
        if not f.init:
            continue
        value = getattr(family, f.name)
        if f.name in ("bands", "references"):
            value = {n: [a, b] for n, a, b in value}
        elif f.name == "one_hot":
            value = {attr: list(words) for attr, words in value}
        elif isinstance(value, tuple):
            value = list(value)
        doc[f.name] = value
    return doc
