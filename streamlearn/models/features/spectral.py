"""Spectral features of equal-length series (numpy real FFT): dominant frequency, band
energies, spectral entropy.

Every feature is scale-free (a series times 1000 has the same features) and huge
magnitudes cannot overflow (see :func:`power_spectrum`). The DC bin (the mean) is
dropped: for a series of ``n`` values the bins are ``k = 1 .. n // 2`` at ``k / n``
cycles per value. A constant series has no spectrum: its dominant frequency, band
energies and entropy are all 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

__all__ = ["band_mask", "power_spectrum", "spectral_features"]

_EPS = 1e-12
_TINY = 1e-300
#: Largest series transformed by a DFT matrix product (a 2 MiB matrix), FFT above.
_DFT_MAX = 512
#: Rows with values beyond this are scaled first (n <= 4096: the power stays finite).
_SCALE_AT = 1e150


def power_spectrum(x: np.ndarray) -> np.ndarray:
    """Power of the non-DC bins of each row of ``x`` (shape ``(m, n)`` -> ``(m, n // 2)``).

    ``|X_k|^2`` of the discrete Fourier transform, for ``k = 1 .. n // 2``: a product
    with a cached DFT matrix up to ``n = 512`` (faster than an FFT call at these sizes),
    numpy's real FFT above. Each row's first value is subtracted first (it only moves
    the DC bin, and keeps a large offset from drowning small variations in rounding);
    rows holding values beyond ``1e150`` are scaled to ``max |x| = 1`` first, so the
    power cannot overflow.

    Examples
    --------
    >>> power_spectrum(np.array([[1.0, -1.0, 1.0, -1.0]])).round(6).tolist()
    [[0.0, 16.0]]
    >>> power_spectrum(np.array([[1e308, -1e308, 1e308, -1e308]])).round(6).tolist()
    [[0.0, 16.0]]
    >>> x = np.random.default_rng(0).normal(size=(2, 512))  # the matrix path = the FFT
    >>> bool(np.allclose(power_spectrum(x), np.abs(np.fft.rfft(x))[:, 1:] ** 2))
    True
    """
    x = np.asarray(x, dtype=float)
    if np.abs(x).max() > _SCALE_AT:
        scale = np.abs(x).max(axis=1, keepdims=True)
        scale[scale == 0.0] = 1.0
        x = x / scale
    x = x - x[:, :1]
    n = x.shape[1]
    if n <= _DFT_MAX:
        z = x @ _dft_matrix(n)
        z *= z
        half = z.shape[1] // 2
        return z[:, :half] + z[:, half:]
    return np.abs(np.fft.rfft(x, axis=1)[:, 1:]) ** 2


@lru_cache(maxsize=8)
def _dft_matrix(n: int) -> np.ndarray:
    """``[cos | sin]`` of ``2 pi k t / n``, ``t = 0 .. n - 1`` by ``k = 1 .. n // 2``."""
    angles = 2.0 * np.pi * np.outer(np.arange(n), np.arange(1, n // 2 + 1)) / n
    matrix = np.concatenate([np.cos(angles), np.sin(angles)], axis=1)
    matrix.flags.writeable = False
    return matrix


@lru_cache(maxsize=256)
def band_mask(n: int, bands: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Which non-DC bins of an ``n``-point spectrum fall in each band (cycles per value).

    A band ``(low, high)`` holds the bins with ``low <= k / n < high``; the Nyquist bin
    (``k / n = 0.5``) also belongs to bands with ``high >= 0.5``. Returns a read-only
    float matrix of shape ``(n // 2, len(bands))``: ``power @ mask`` sums each band.

    Examples
    --------
    >>> band_mask(8, ((0.0, 0.25), (0.25, 0.5))).T.astype(int).tolist()
    [[1, 0, 0, 0], [0, 1, 1, 1]]
    """
    mask = _mask(np.arange(1, n // 2 + 1) / n, bands).T.astype(float)
    mask.flags.writeable = False
    return mask


def _mask(freqs: np.ndarray, bands: Sequence[tuple[float, float]]) -> np.ndarray:
    """``(len(bands), *freqs.shape)`` booleans: whether each frequency is in each band."""
    out = np.zeros((len(bands), *freqs.shape), dtype=bool)
    top = freqs >= 0.5 - _EPS  # the Nyquist bin (in cycles per value)
    for i, (low, high) in enumerate(bands):
        out[i] = (freqs >= low - _EPS) & ((freqs < high - _EPS) | (top & (high >= 0.5)))
    return out


def spectral_features(
    x: np.ndarray,
    bands: Sequence[tuple[float, float]] = (),
    spacing_s: Sequence[float] | None = None,
) -> tuple[list[float], list[list[float]], list[float]]:
    """Dominant frequency, band energy fractions and normalised entropy of each row.

    Parameters
    ----------
    x
        Shape ``(m, n)``: ``m`` series of ``n >= 4`` values, finite.
    bands
        ``(low, high)`` pairs in the output unit.
    spacing_s
        Seconds between values, one per row: frequencies (dominant and bands) are then
        in Hz; ``None``: cycles per value.

    Returns
    -------
    tuple of lists
        ``dominant`` (``m`` floats), ``energy`` (``m`` lists: the fraction of the non-DC
        energy in each band, in [0, 1]) and ``entropy`` (``m`` floats: the Shannon
        entropy of the normalised power spectrum divided by ``log(n // 2)``, in [0, 1]).

    Examples
    --------
    A pure sine at 1/8 cycle per value: all its energy is in one bin.

    >>> t = np.arange(32)
    >>> dom, energy, entropy = spectral_features(
    ...     np.sin(2 * np.pi * t / 8)[None, :], [(0.0, 0.2), (0.2, 0.5)])
    >>> dom, [[round(e, 6) for e in row] for row in energy], [round(h, 6) for h in entropy]
    ([0.125], [[1.0, 0.0]], [0.0])

    Sampled every 0.5 s, that is 0.25 Hz:

    >>> spectral_features(np.sin(2 * np.pi * t / 8)[None, :], spacing_s=[0.5])[0]
    [0.25]
    """
    x = np.asarray(x, dtype=float)
    m, n = x.shape
    power = power_spectrum(x)
    bins = power.shape[1]
    totals = power.sum(axis=1, keepdims=True)
    p = power / (totals + _TINY)  # rows of a constant series stay 0
    plogp = (p * np.log(p + _TINY)).sum(axis=1).tolist()
    norm = math.log(bins) if bins > 1 else 1.0
    peaks = power.argmax(axis=1).tolist()
    band_list = tuple((float(lo), float(hi)) for lo, hi in bands)
    if not band_list:
        energy = [[] for _ in range(m)]
    elif spacing_s is None:
        energy = (p @ band_mask(n, band_list)).tolist()
    else:
        energy = [
            (p[i] @ _hz_mask(n, band_list, float(sp))).tolist() for i, sp in enumerate(spacing_s)
        ]
    dom, en, ent = [], [], []
    for i, total in enumerate(totals[:, 0].tolist()):
        if total > 0.0:
            f = (peaks[i] + 1) / n
            dom.append(f if spacing_s is None else f / spacing_s[i])
            ent.append(min(1.0, max(0.0, -plogp[i] / norm)))
            en.append([min(1.0, max(0.0, e)) for e in energy[i]])
        else:  # constant: no spectrum
            dom.append(0.0)
            ent.append(0.0)
            en.append([0.0] * len(band_list))
    return dom, en, ent


def _hz_mask(n: int, bands: tuple[tuple[float, float], ...], spacing_s: float) -> np.ndarray:
    """:func:`band_mask` for bands in Hz, values ``spacing_s`` seconds apart."""
    return band_mask(n, tuple((lo * spacing_s, hi * spacing_s) for lo, hi in bands))
