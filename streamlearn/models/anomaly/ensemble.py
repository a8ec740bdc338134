"""A weighted mean of calibrated detectors, with per-member scores for alerts."""

from __future__ import annotations

import math

from streamlearn.models.anomaly.base import AnomalyError, Detector, check_int
from streamlearn.models.anomaly.calibration import Calibrated

__all__ = ["Ensemble"]


class Ensemble(Detector):
    """Weighted mean of the members' calibrated scores (each member in :class:`Calibrated`).

    Score in ``[0, 1]``. Members are learned in place; a member already wrapped in
    ``Calibrated`` is used as is. :meth:`score_details` gives each member's calibrated
    score, e.g. for an alert; each raw score is computed once per event (``Calibrated``
    caches it), so ``score_details``, ``score_one`` and ``learn_one`` on the same event
    cost one raw score per member.

    Parameters
    ----------
    members
        Detectors by name.
    weights
        Weight of each member (every name, >= 0, not all 0); ``None`` for equal weights.
    calibration_window
        ``window`` of the ``Calibrated`` wrappers.

    Examples
    --------
    >>> from streamlearn.models.anomaly.zscore import RobustZScore
    >>> ens = Ensemble(
    ...     {"mad": RobustZScore(window=64, min_samples=8),
    ...      "std": RobustZScore(window=64, method="std", min_samples=8)},
    ...     weights={"mad": 2.0, "std": 1.0},
    ... )
    >>> for i in range(60):
    ...     ens.learn_one({"v": float(i % 5)})
    >>> ens.score_details({"v": 40.0}), ens.score_one({"v": 40.0})
    ({'mad': 1.0, 'std': 1.0}, 1.0)
    """

    def __init__(
        self,
        members: dict[str, Detector],
        weights: dict[str, float] | None = None,
        calibration_window: int = 1000,
    ) -> None:
        if not members or not all(isinstance(m, Detector) for m in members.values()):
            raise AnomalyError("members must be a non-empty dict of name -> Detector")
        check_int("calibration_window", calibration_window)
        if weights is not None:
            if set(weights) != set(members):
                raise AnomalyError(
                    f"weights must name exactly the members {sorted(members)}, "
                    f"got {sorted(weights)}"
                )
            if not all(math.isfinite(w) and w >= 0 for w in weights.values()) or not any(
                weights.values()
            ):
                raise AnomalyError(f"weights must be finite, >= 0 and not all 0: {weights}")
        self.members = members
        self.weights = weights
        self.calibration_window = calibration_window
        self._calibrated = {
            name: m if isinstance(m, Calibrated) else Calibrated(m, calibration_window)
            for name, m in members.items()
        }
        w = weights or dict.fromkeys(members, 1.0)
        total = sum(w.values())
        self._weights = {name: w[name] / total for name in members}

    def learn_one(self, x: dict[str, float]) -> None:
        for member in self._calibrated.values():
            member.learn_one(x)

    def score_details(self, x: dict[str, float]) -> dict[str, float]:
        """Calibrated score of each member, by name."""
        return {name: m.score_one(x) for name, m in self._calibrated.items()}

    def score_one(self, x: dict[str, float]) -> float:
        details = self.score_details(x)
        return min(1.0, sum(self._weights[name] * s for name, s in details.items()))
