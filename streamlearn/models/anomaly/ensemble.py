"""A weighted combination of calibrated detectors, with per-member scores for alerts."""

from __future__ import annotations

import math

from streamlearn.models.anomaly.base import AnomalyError, Detector, check_int
from streamlearn.models.anomaly.calibration import Calibrated

__all__ = ["Ensemble"]


class Ensemble(Detector):
    """Weighted mean of the members' surprise ``-log(1 - p)``, ``p`` each calibrated score.

    Each member is wrapped in :class:`Calibrated` (a member already wrapped is used as
    is), so scores of different scales become comparable tail probabilities. They are
    combined as surprise, not averaged as probabilities: a mean of probabilities
    cannot tell "one member is certain (1 in a million)" from "one member is at its
    99th percentile", since both sit near 1. The raw score is ``>= 0`` (capped at
    ``-log(1e-12)`` per member), like any detector's; calibrate it (``Calibrated``,
    the alert layer does) for ``[0, 1]``. With ``combine="max"`` the largest weighted
    surprise is the score instead. :meth:`score_details` gives each member's calibrated
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
    combine
        ``"mean"`` (weighted mean of surprise) or ``"max"`` (largest weighted surprise).

    Examples
    --------
    >>> from streamlearn.models.anomaly.zscore import RobustZScore
    >>> ens = Ensemble(
    ...     {"mad": RobustZScore(window=64, min_samples=8),
    ...      "std": RobustZScore(window=64, method="std", min_samples=8)},
    ...     weights={"mad": 2.0, "std": 1.0},
    ... )
    >>> for i in range(600):
    ...     ens.learn_one({"v": float(i % 5) + i % 7 / 10})
    >>> {k: round(p, 4) for k, p in ens.score_details({"v": 4.5}).items()}
    {'mad': 0.8825, 'std': 0.86}
    >>> round(ens.score_one({"v": 4.5}), 2), round(ens.score_one({"v": 5.0}), 2)  # surprise
    (2.08, 15.38)
    """

    def __init__(
        self,
        members: dict[str, Detector],
        weights: dict[str, float] | None = None,
        calibration_window: int = 2000,
        combine: str = "mean",
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
        if combine not in ("mean", "max"):
            raise AnomalyError(f"combine must be 'mean' or 'max', got {combine!r}")
        self.members = members
        self.weights = weights
        self.calibration_window = calibration_window
        self.combine = combine
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

    def skip_one(self, x: dict[str, float]) -> None:
        for member in self._calibrated.values():
            member.skip_one(x)

    def score_details(self, x: dict[str, float]) -> dict[str, float]:
        """Calibrated score of each member, by name."""
        return {name: m.score_one(x) for name, m in self._calibrated.items()}

    def score_one(self, x: dict[str, float]) -> float:
        return self.combine_details(self.score_details(x))

    def combine_details(self, details: dict[str, float]) -> float:
        """The raw ensemble score of members' calibrated scores (``score_details``)."""
        weights = self._weights
        if self.combine == "max":
            return max(weights[name] * surprise(p) for name, p in details.items()) * len(weights)
        return math.fsum(weights[name] * surprise(p) for name, p in details.items())


#: Smallest tail probability told apart: surprise is capped at -log(1e-12) ~ 27.6.
MIN_TAIL = 1e-12


def surprise(p: float) -> float:
    """``-log(1 - p)`` of a calibrated score ``p``, capped at ``-log(MIN_TAIL)``.

    >>> surprise(0.0), round(surprise(0.9999), 2), round(surprise(1.0), 2)
    (0.0, 9.21, 27.63)
    """
    return -math.log(max(1.0 - p, MIN_TAIL)) + 0.0
