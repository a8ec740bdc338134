"""From an event and its key's feature state to a flat ``dict[str, float]`` for River.

:class:`FeaturePipeline` is built once from a :class:`FeatureConfig`; each key has its
own :class:`KeyFeatures` (``new_state()``). Per event of a key, in order:

* ``transform(event, state)`` returns the event's features and does **not** touch the
  state (safe for a read-only prediction, as often as wanted);
* ``update(event, state)`` then advances the state with the event.

``extract(event, state)`` does both. Features that need history describe the key's
past, i.e. the events given to ``update`` before; the current event enters through its
own values (raw, delta, z against the window, distance from the last position).

Rules that hold for every family:

* A feature whose history is missing (first event, a value's first appearance, a
  window or spectrum not filled yet) is **omitted**, never 0 and never NaN.
* Per-value features are given for the values the event carries; a value missing from
  an event contributes nothing and is not learned. Non-finite values count as missing.
* Every feature is finite: a few are bounded by construction (``|z| <= 1e12``), the
  rest are clipped to the float range.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from streamlearn.models.features.config import (
    FeatureConfig,
    FeatureError,
    WindowConfig,
    parse_duration_ms,
    quantile_label,
    valid_point,
)
from streamlearn.models.features.geo import bearing_rad, haversine_m
from streamlearn.models.features.spectral import spectral_features
from streamlearn.models.features.state import KeyFeatures, ValueHistory
from streamlearn.models.features.stats import clip, summarize, zscore

__all__ = ["EventLike", "FeaturePipeline", "Observation", "hash_bucket"]

_TWO_PI = 2.0 * math.pi
_DAY_MS = 86_400_000
#: cycle -> (period ms, offset ms): phase = ((ts + offset) mod period) / period
_CYCLES = {
    "hour": (_DAY_MS, 0),
    "weekday": (7 * _DAY_MS, 3 * _DAY_MS),  # 1970-01-01 was a Thursday: Monday is phase 0
    "yearday": (31_556_952_000, 0),  # 365.2425 days from 1970-01-01
}
_NAMES_CACHE_MAX = 4096


class EventLike(Protocol):
    """What a pipeline reads from an event (``Event`` and :class:`Observation` have it).

    ``attrs`` may be absent; it is read only by the categorical family.
    """

    ts_ms: int
    values: Mapping[str, float]


@dataclass(slots=True)
class Observation:
    """A minimal event for the pipeline: a key, an event time (epoch ms), values, attrs."""

    key: str
    ts_ms: int
    values: dict[str, float]
    attrs: dict[str, str] | None = None


class _Names:
    """Feature names derived from one value name (computed once, cached)."""

    __slots__ = ("delta", "ewma", "fft_bands", "fft_dom", "fft_ent", "lags", "win", "win_z")

    def __init__(self, pipe: FeaturePipeline, name: str) -> None:
        self.delta = f"{name}_delta"
        self.lags = [f"{name}_lag{i}" for i in range(1, pipe._lags + 1)]
        self.ewma = [f"{name}_ewma_{label}" for label, _, _ in pipe._ewma]
        self.win: list[tuple[str, str]] = []
        self.win_z = f"{name}_win_z"
        w = pipe.config.window
        if w is not None:
            self.win = [(s, f"{name}_win_{s}") for s in w.stats if s != "z"]
            self.win += [
                (f"q{i}", f"{name}_win_{quantile_label(q)}") for i, q in enumerate(w.quantiles)
            ]
        f = pipe.config.frequency
        self.fft_dom = f"{name}_fft_dominant"
        self.fft_ent = f"{name}_fft_entropy"
        self.fft_bands = [] if f is None else [f"{name}_fft_{b}" for b, _, _ in f.bands]


class FeaturePipeline:
    """Features of an event from its key's past, by configuration.

    Parameters
    ----------
    config
        A :class:`FeatureConfig`, its dict form (the ``model_features`` setting), or
        ``None`` for the defaults (raw values, hour and weekday cycles, time since the
        key's last event, each value's delta).

    Examples
    --------
    >>> pipe = FeaturePipeline()
    >>> state = pipe.new_state()
    >>> t0 = 1_767_607_200_000  # 2026-01-05 10:00 UTC, a Monday
    >>> feats = pipe.extract(Observation("pump-7", t0, {"temp": 20.0}), state)
    >>> {name: round(v, 3) for name, v in feats.items()}
    {'temp': 20.0, 'hour_sin': 0.5, 'hour_cos': -0.866, 'weekday_sin': 0.365, 'weekday_cos': 0.931}
    >>> feats = pipe.transform(Observation("pump-7", t0 + 30_000, {"temp": 21.5}), state)
    >>> feats["since_last_s"], feats["temp_delta"]
    (30.0, 1.5)

    ``transform`` left the state as it was; ``update`` advances it:

    >>> state.events
    1
    >>> pipe.update(Observation("pump-7", t0 + 30_000, {"temp": 21.5}), state)
    >>> state
    KeyFeatures(events=2, last_ts_ms=1767607230000, values=['temp'])

    A window, lags and an EWMA, from the dict form:

    >>> pipe = FeaturePipeline({"temporal": {"cyclical": [], "lags": 2, "delta": False,
    ...                                      "ewma_alphas": [0.5]},
    ...                         "window": {"size": 4, "stats": ["mean", "z"], "quantiles": []}})
    >>> state = pipe.new_state()
    >>> for i, v in enumerate([1.0, 2.0, 3.0, 4.0]):
    ...     feats = pipe.extract(Observation("k", i * 1000, {"x": v}), state)
    >>> feats
    {'x': 4.0, 'since_last_s': 1.0, 'x_lag1': 3.0, 'x_lag2': 2.0, 'x_win_mean': 2.0, \
'x_win_z': 2.0, 'x_ewma_0.5': 2.25}
    """

    def __init__(self, config: FeatureConfig | Mapping[str, Any] | None = None) -> None:
        if not isinstance(config, FeatureConfig):
            config = FeatureConfig.from_dict(config)
        self.config = config
        self._id = config.fingerprint()
        self._values = config.values
        self._max_values = config.max_values if config.values is None else len(config.values)
        self._prefix = None if config.raw is None else config.raw.prefix
        t = config.temporal
        self._cycles: list[tuple[str, str, int, int]] = []
        self._since_last = self._delta = False
        self._lags = 0
        #: (label, alpha, half-life ms): a time half-life when the last is > 0
        self._ewma: list[tuple[str, float, float]] = []
        if t is not None:
            self._cycles = [(f"{c}_sin", f"{c}_cos", *_CYCLES[c]) for c in t.cyclical]
            self._since_last, self._lags, self._delta = t.since_last, t.lags, t.delta
            self._ewma = [(f"{a:g}", a, 0.0) for a in t.ewma_alphas]
            for h in t.ewma_half_lives:
                if isinstance(h, str):
                    self._ewma.append((f"hl{h}", 0.0, float(parse_duration_ms(h))))
                else:
                    self._ewma.append((f"hl{h:g}", 1.0 - 0.5 ** (1.0 / h), 0.0))
        w, f = config.window, config.frequency
        self._base_size = max(self._lags, int(self._delta), w.size if w is not None else 0)
        self._freq_names = None if f is None or f.values is None else frozenset(f.values)
        self._freq_size = 0 if f is None else f.size
        self._freq_bands = () if f is None else tuple((lo, hi) for _, lo, hi in f.bands)
        self._timed = (w is not None and w.duration_ms is not None) or (
            f is not None and f.unit == "hz"
        )
        self._keeps_history = bool(self._base_size or self._ewma or f is not None)
        self._names: dict[str, _Names] = {}
        c = config.categorical
        self._buckets = [] if c is None else [f"attr_hash{i}" for i in range(c.hash_buckets)]
        #: (attr, its feature names (vocabulary then _other), word -> its feature name)
        self._one_hot: list[tuple[str, tuple[str, ...], dict[str, str]]] = []
        for attr, words in () if c is None else c.one_hot:
            features = tuple(f"attr_{attr}={w}" for w in (*words, "_other"))
            self._one_hot.append((attr, features, dict(zip(words, features, strict=False))))

    # --- state ----------------------------------------------------------------------
    def new_state(self) -> KeyFeatures:
        """A key's empty state, tied to this configuration."""
        return KeyFeatures(self._id)

    def state_for(self, state: KeyFeatures | None) -> KeyFeatures:
        """``state`` if this configuration made it, else a new one (config changed).

        Examples
        --------
        >>> old = FeaturePipeline({"temporal": {"lags": 3}}).new_state()
        >>> pipe = FeaturePipeline()
        >>> pipe.state_for(old) is old, pipe.state_for(None).events
        (False, 0)
        """
        if state is not None and state.config_id == self._id:
            return state
        return self.new_state()

    def _check(self, state: KeyFeatures) -> None:
        if state.config_id != self._id:
            raise FeatureError(
                "state: made by another feature configuration; use state_for() or new_state()"
            )

    # --- the API --------------------------------------------------------------------
    def transform(self, event: EventLike, state: KeyFeatures) -> dict[str, float]:
        """The event's features given its key's past; ``state`` is not modified."""
        self._check(state)
        ts = event.ts_ms
        items = self._items(event.values)
        out: dict[str, float] = {}
        prefix = self._prefix
        if prefix == "":
            out.update(items)
        elif prefix is not None:
            for name, v in items:
                out[prefix + name] = v
        for sin_name, cos_name, period, offset in self._cycles:
            angle = ((ts + offset) % period) * (_TWO_PI / period)
            out[sin_name] = math.sin(angle)
            out[cos_name] = math.cos(angle)
        if self._since_last and state.last_ts_ms is not None:
            out["since_last_s"] = max(0, ts - state.last_ts_ms) / 1000.0
        if self._keeps_history and state.history:
            self._history_features(items, ts, state, out)
        config = self.config
        if config.spatial is not None:
            self._spatial_features(event.values, ts, state, out)
        if config.categorical is not None:
            self._categorical_features(getattr(event, "attrs", None), out)
        return out

    def update(self, event: EventLike, state: KeyFeatures) -> None:
        """Advance ``state`` with the event (call after ``transform``)."""
        self._check(state)
        ts = event.ts_ms
        state.events += 1
        if state.last_ts_ms is None or ts > state.last_ts_ms:
            state.last_ts_ms = ts
        if self._keeps_history:
            history = state.history
            ewma = self._ewma
            window = self.config.window
            for name, v in self._items(event.values):
                h = history.get(name)
                if h is None:
                    if len(history) >= self._max_values:
                        continue
                    h = history[name] = ValueHistory(
                        self._size_for(name), self._timed, window is not None
                    )
                if h.window is not None:
                    _slide_window(h, v, ts, window)
                else:
                    h.values.append(v)
                    if h.times is not None:
                        h.times.append(ts)
                if ewma:
                    _update_ewma(h, v, ts, ewma)
                h.last_ts = ts
        if self.config.spatial is not None:
            pos = self._position(event.values)
            if pos is not None:
                state.geo = (pos[0], pos[1], ts)

    def extract(
        self, event: EventLike, state: KeyFeatures, update: bool = True
    ) -> dict[str, float]:
        """``transform`` then, if ``update``, ``update``: the stream's per-event call."""
        out = self.transform(event, state)
        if update:
            self.update(event, state)
        return out

    def feature_names(self, value_names: Iterable[str]) -> list[str]:
        """Every feature this pipeline gives, once warmed up, for events with these values.

        In the order ``transform`` gives them (for events carrying the values in this
        order). While a key's history fills, its events give a subset of these.

        Examples
        --------
        >>> FeaturePipeline().feature_names(["temp"])
        ['temp', 'hour_sin', 'hour_cos', 'weekday_sin', 'weekday_cos', 'since_last_s', \
'temp_delta']
        """
        names = [n for n in value_names if self._values is None or n in self._values]
        if self._values is not None:
            names = [n for n in self._values if n in names]
        out = [] if self._prefix is None else [self._prefix + n for n in names]
        for sin_name, cos_name, _, _ in self._cycles:
            out += [sin_name, cos_name]
        if self._since_last:
            out.append("since_last_s")
        config = self.config
        tracked = names[: self._max_values] if self._keeps_history else []
        for n in tracked:
            nm = self._names_for(n)
            if self._delta:
                out.append(nm.delta)
            out += nm.lags
            if config.window is not None:
                out += [f for _, f in nm.win]
                if "z" in config.window.stats:
                    out.append(nm.win_z)
            out += nm.ewma
        f = config.frequency
        for n in tracked if f is not None else ():
            if self._spectral_for(n):
                nm = self._names_for(n)
                out += [nm.fft_dom] if f.dominant else []
                out += nm.fft_bands
                out += [nm.fft_ent] if f.entropy else []
        if config.spatial is not None:
            out += [f"geo_dist_{r}_m" for r, _, _ in config.spatial.references]
            out += ["geo_dist_m", "geo_speed_mps", "geo_bearing_sin", "geo_bearing_cos"]
        if config.categorical is not None:
            for attr, words in config.categorical.one_hot:
                out += [f"attr_{attr}={w}" for w in (*words, "_other")]
            out += [f"attr_hash{i}" for i in range(config.categorical.hash_buckets)]
        return out

    # --- families -------------------------------------------------------------------
    def _items(self, values: Mapping[str, float]) -> list[tuple[str, float]]:
        isfinite = math.isfinite
        if self._values is None:
            return [(k, v) for k, v in values.items() if isfinite(v)]
        return [(k, values[k]) for k in self._values if k in values and isfinite(values[k])]

    def _names_for(self, name: str) -> _Names:
        names = self._names.get(name)
        if names is None:
            if len(self._names) >= _NAMES_CACHE_MAX:
                self._names.clear()
            names = self._names[name] = _Names(self, name)
        return names

    def _spectral_for(self, name: str) -> bool:
        return self._freq_size > 0 and (self._freq_names is None or name in self._freq_names)

    def _size_for(self, name: str) -> int:
        if self._spectral_for(name):
            return max(self._base_size, self._freq_size)
        return self._base_size

    def _history_features(
        self, items: list[tuple[str, float]], ts: int, state: KeyFeatures, out: dict[str, float]
    ) -> None:
        history = state.history
        window = self.config.window
        spectra: list[tuple[_Names, ValueHistory]] = []
        for name, x in items:
            h = history.get(name)
            if h is None:
                continue
            names = self._names_for(name)
            vals = h.values
            n = len(vals)
            if n:
                if self._delta:
                    out[names.delta] = clip(x - vals[-1])
                for i in range(min(self._lags, n)):
                    out[names.lags[i]] = vals[-1 - i]
                if window is not None and n >= window.min_count:
                    self._window_features(x, h, ts, names, out)
                if n >= self._freq_size > 0 and self._spectral_for(name):
                    spectra.append((names, h))
            for label, e in zip(names.ewma, h.ewma, strict=False):
                out[label] = e
        if spectra:
            self._spectral_features(spectra, out)

    def _window_features(
        self, x: float, h: ValueHistory, ts: int, names: _Names, out: dict[str, float]
    ) -> None:
        w = self.config.window
        ws = h.window
        assert w is not None and ws is not None
        n = ws.n
        if n < w.min_count:
            return
        vals = h.values
        first = len(vals) - n  # the window is the last n values
        expired: list[float] = []
        if w.duration_ms is not None and h.times is not None:
            times, cutoff = h.times, ts - w.duration_ms
            while len(expired) < n and times[first + len(expired)] <= cutoff:
                expired.append(vals[first + len(expired)])
            if n - len(expired) < w.min_count:
                return
        if ws.huge():
            kept = range(first + len(expired), len(vals))
            summary = summarize([vals[i] for i in kept], w.quantiles)
        else:
            summary = ws.summary(w.quantiles, expired)
        for stat, feature in names.win:
            out[feature] = summary[stat]
        if "z" in w.stats:
            out[names.win_z] = zscore(x, summary["mean"], summary["std"])

    def _spectral_features(
        self, spectra: list[tuple[_Names, ValueHistory]], out: dict[str, float]
    ) -> None:
        f = self.config.frequency
        assert f is not None
        size = f.size
        rows, spacing = [], []
        kept = []
        for names, h in spectra:
            vals = h.values
            if f.unit == "hz":
                times = h.times
                assert times is not None
                step = (times[-1] - times[len(times) - size]) / (size - 1) / 1000.0
                if step <= 0.0:
                    continue  # no time elapsed: no frequency in Hz
                spacing.append(step)
            rows.append(vals if len(vals) == size else list(vals)[-size:])
            kept.append(names)
        if not rows:
            return
        dom, en, ent = spectral_features(
            np.array(rows), self._freq_bands, spacing if f.unit == "hz" else None
        )
        for i, names in enumerate(kept):
            if f.dominant:
                out[names.fft_dom] = clip(dom[i])
            for feature, e in zip(names.fft_bands, en[i], strict=True):
                out[feature] = e
            if f.entropy:
                out[names.fft_ent] = ent[i]

    def _position(self, values: Mapping[str, float]) -> tuple[float, float] | None:
        s = self.config.spatial
        assert s is not None
        lat, lon = values.get(s.lat), values.get(s.lon)
        if lat is None or lon is None or not valid_point(lat, lon):
            return None
        return float(lat), float(lon)

    def _spatial_features(
        self, values: Mapping[str, float], ts: int, state: KeyFeatures, out: dict[str, float]
    ) -> None:
        s = self.config.spatial
        assert s is not None
        pos = self._position(values)
        if pos is None:
            return
        lat, lon = pos
        for name, rlat, rlon in s.references:
            out[f"geo_dist_{name}_m"] = haversine_m(lat, lon, rlat, rlon)
        if state.geo is None:
            return
        plat, plon, pts = state.geo
        dist = haversine_m(plat, plon, lat, lon)
        out["geo_dist_m"] = dist
        if ts > pts:
            out["geo_speed_mps"] = dist / ((ts - pts) / 1000.0)
        if dist > 0.0:
            b = bearing_rad(plat, plon, lat, lon)
            out["geo_bearing_sin"] = math.sin(b)
            out["geo_bearing_cos"] = math.cos(b)

    def _categorical_features(self, attrs: Mapping[str, str] | None, out: dict[str, float]) -> None:
        c = self.config.categorical
        assert c is not None
        attrs = attrs or {}
        for attr, features, by_word in self._one_hot:
            for feature in features:
                out[feature] = 0.0
            value = attrs.get(attr)
            if value is not None:
                out[by_word.get(value, features[-1])] = 1.0
        if c.hash_buckets:
            buckets = [0.0] * c.hash_buckets
            encoded = {attr for attr, _ in c.one_hot}
            for attr, value in attrs.items():
                if attr in encoded if c.hash_attrs is None else attr not in c.hash_attrs:
                    continue
                buckets[hash_bucket(attr, value, c.hash_buckets)] += 1.0
            for feature, count in zip(self._buckets, buckets, strict=True):
                out[feature] = count


def _slide_window(h: ValueHistory, v: float, ts: int, w: WindowConfig) -> None:
    """Append ``v`` to the history and move its window: by count, then by time."""
    ws, vals, times = h.window, h.values, h.times
    assert ws is not None
    if ws.n == w.size:
        ws.remove(vals[len(vals) - ws.n])
    vals.append(v)
    if times is not None:
        times.append(ts)
    ws.add(v)
    if w.duration_ms is not None and times is not None:
        cutoff = ts - w.duration_ms
        while ws.n and times[len(times) - ws.n] <= cutoff:
            ws.remove(vals[len(vals) - ws.n])
    if ws.needs_refresh(w.size):
        ws.refresh([vals[i] for i in range(len(vals) - ws.n, len(vals))])


def _update_ewma(h: ValueHistory, v: float, ts: int, specs: list[tuple[str, float, float]]) -> None:
    ew = h.ewma
    if not ew:
        h.ewma = [v] * len(specs)
        return
    for i, (_, alpha, half_life_ms) in enumerate(specs):
        if half_life_ms:
            elapsed = ts - h.last_ts if h.last_ts is not None else 0
            a = 1.0 - 2.0 ** (-elapsed / half_life_ms) if elapsed > 0 else 0.0
        else:
            a = alpha
        ew[i] = ew[i] * (1.0 - a) + a * v  # a convex combination: cannot overflow


def hash_bucket(attr: str, value: str, buckets: int) -> int:
    """The bucket of ``attr=value``: CRC-32 of its UTF-8 bytes modulo ``buckets``.

    Stable across processes and Python versions (unlike ``hash``).

    Examples
    --------
    >>> hash_bucket("city", "Paris", 16), hash_bucket("city", "Lyon", 16)
    (0, 4)
    """
    return zlib.crc32(f"{attr}={value}".encode()) % buckets
