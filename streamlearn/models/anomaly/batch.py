"""Batch and backfill scoring with the stream's own code: the same events, the same scores.

A row becomes an event exactly as ``streamlearn replay`` publishes it
(:func:`streamlearn.replay.event_from_row`) and is validated by the worker's own
:func:`~streamlearn.validation.parse_event`; each key's events then go through
:meth:`Scorer.process <streamlearn.models.anomaly.scorer.Scorer.process>` in file
order, as the worker's anomaly agent does. So a file scored here and the same file
replayed into a worker give identical scores and verdicts, row for row.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from streamlearn.errors import StreamlearnError
from streamlearn.models.anomaly.defaults import detector_factory
from streamlearn.models.anomaly.scorer import AlertPolicy, KeyState, Scored, Scorer
from streamlearn.replay import ColumnMap, ReplayError, event_from_row
from streamlearn.validation import InvalidEvent, parse_event

__all__ = ["DetectResult", "DetectSummary", "detect_csv", "detect_rows"]

#: The key of every row when the input has no key column (one series).
SINGLE_KEY = "series"
OUTPUT_COLUMNS = ("anomaly_score", "is_anomaly", "episode_id", "error")


@dataclass(frozen=True, slots=True)
class DetectResult:
    """One input row's outcome: its score, or why it could not be scored."""

    key: str | None
    ts_ms: int | None
    scored: Scored | None
    episode_id: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class DetectSummary:
    rows: int
    scored: int
    anomalies: int
    alerts: int
    errors: int
    keys: int


def detect_rows(
    rows: Iterable[Mapping[str, Any]],
    *,
    key_column: str | None = None,
    time_column: str | None = None,
    value_columns: Sequence[str] | None = None,
    detector: str = "default",
    params: dict[str, Any] | None = None,
    policy: AlertPolicy | None = None,
    max_event_bytes: int = 1_048_576,
) -> Iterator[DetectResult]:
    """Score ``rows`` (dicts, e.g. ``csv.DictReader``) in order; one result per row.

    Rows without a key column are one series. Rows the worker would dead-letter get
    ``scored=None`` and the same reason as the dead letter.

    Examples
    --------
    >>> rows = [{"t": i * 1000, "temp": 20 + i % 3} for i in range(150)]
    >>> rows.append({"t": 150_000, "temp": 90})
    >>> policy = AlertPolicy(threshold=0.99, exit_threshold=0.9, warmup=40)
    >>> out = list(detect_rows(rows, time_column="t", detector="zscore",
    ...                        params={"window": 32}, policy=policy))
    >>> [r.scored.is_anomaly for r in out[-2:]], out[-1].episode_id
    ([False, True], 'series:1')
    >>> bad = list(detect_rows([{"temp": "warm"}], value_columns=["temp"]))
    >>> bad[0].scored, bad[0].error
    (None, 'invalid_values: values.temp must be a number, not string')
    """
    scorer = Scorer(detector_factory(detector, params), policy or AlertPolicy(), detector)
    for _, result in _score(rows, scorer, key_column, time_column, value_columns, max_event_bytes):
        yield result


def _score(
    rows: Iterable[Mapping[str, Any]],
    scorer: Scorer,
    key_column: str | None,
    time_column: str | None,
    value_columns: Sequence[str] | None,
    max_event_bytes: int,
) -> Iterator[tuple[Mapping[str, Any], DetectResult]]:
    columns = ColumnMap(
        key_column=key_column or _KEY,
        time_column=time_column,
        value_columns=list(value_columns) if value_columns else None,
    )
    states: dict[str, KeyState] = {}
    for index, row in enumerate(rows):
        try:
            doc = event_from_row(
                {**row, _KEY: SINGLE_KEY} if key_column is None else dict(row),
                columns,
                f"row {index + 1}",
            )
            event = parse_event(
                orjson.dumps(doc),
                topic="batch",
                partition=0,
                offset=index,
                timestamp_ms=0,
                max_bytes=max_event_bytes,
            )
        except InvalidEvent as exc:
            yield row, DetectResult(None, None, None, error=f"{exc.code.value}: {exc.reason}")
            continue
        except (ReplayError, TypeError, ValueError) as exc:
            yield row, DetectResult(None, None, None, error=str(exc))
            continue
        state = states.get(event.key)
        if state is None:
            state = states[event.key] = scorer.new_state()
        scored = scorer.process(state, event.key, event.values, event.ts_ms, event.id)
        episode = f"{event.key}:{state.episodes}" if scored.is_anomaly else None
        yield row, DetectResult(event.key, event.ts_ms, scored, episode)


_KEY = "\x00key"


def detect_csv(
    source: Path,
    output: Path,
    *,
    key_column: str | None = None,
    time_column: str | None = None,
    value_columns: Sequence[str] | None = None,
    detector: str = "default",
    params: dict[str, Any] | None = None,
    policy: AlertPolicy | None = None,
    on_row: Callable[[int], None] | None = None,
) -> DetectSummary:
    """Score the CSV ``source`` into ``output``: its columns plus :data:`OUTPUT_COLUMNS`.

    ``anomaly_score`` is in [0, 1], ``is_anomaly`` is ``true``/``false``, ``episode_id``
    names the alert episode of an anomalous row, ``error`` says why a row was not
    scored (its score columns are then empty).
    """
    if not source.is_file():
        raise StreamlearnError(f"{source}: no such file")
    scorer = Scorer(detector_factory(detector, params), policy or AlertPolicy(), detector)
    counts = {"rows": 0, "scored": 0, "anomalies": 0, "alerts": 0, "errors": 0}
    with source.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        if not header:
            raise StreamlearnError(f"{source}: empty file (no header row)")
        for name in [key_column, time_column, *(value_columns or [])]:
            if name is not None and name not in header:
                raise StreamlearnError(f"{source}: no column {name!r} (columns: {header})")
        clash = [c for c in OUTPUT_COLUMNS if c in header]
        if clash:
            raise StreamlearnError(f"{source}: already has output column(s) {clash}")
        keys: set[str] = set()
        output.parent.mkdir(parents=True, exist_ok=True)
        with output.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow([*header, *OUTPUT_COLUMNS])
            results = _score(reader, scorer, key_column, time_column, value_columns, 1 << 30)
            for row, result in results:
                counts["rows"] += 1
                if on_row is not None:
                    on_row(1)
                cells = [row.get(c, "") for c in header]
                if result.scored is None:
                    counts["errors"] += 1
                    writer.writerow([*cells, "", "", "", result.error])
                    continue
                keys.add(result.key or "")
                counts["scored"] += 1
                counts["anomalies"] += result.scored.is_anomaly
                counts["alerts"] += result.scored.alert is not None
                writer.writerow(
                    [
                        *cells,
                        repr(result.scored.score),
                        "true" if result.scored.is_anomaly else "false",
                        result.episode_id or "",
                        "",
                    ]
                )
    return DetectSummary(keys=len(keys), **counts)
