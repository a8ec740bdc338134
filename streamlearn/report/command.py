"""``streamlearn report``: arguments → read Kafka → build → render → write."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

from streamlearn.config import Settings
from streamlearn.errors import StreamlearnError
from streamlearn.report.data import (
    Report,
    ReportBuilder,
    ReportOptions,
    default_output_name,
    format_time,
    parse_time,
)

__all__ = ["ArgumentError", "resolve_range", "run", "summary_line"]

DEFAULT_SPAN_MS = 3_600_000


class ArgumentError(StreamlearnError):
    """A command-line argument the report cannot use; the message names it."""


def _duration(text: str, option: str) -> int:
    from streamlearn.analytics.windows.spec import parse_duration_ms

    try:
        return parse_duration_ms(text)
    except ValueError:
        raise ArgumentError(
            f"{option} {text!r} is not a duration like 30s, 15m, 1h or 2d"
        ) from None


def resolve_range(from_text: str | None, to_text: str, now_ms: int) -> tuple[int, int]:
    """``(from_ms, to_ms)`` of the arguments; :class:`ArgumentError` names what is wrong.

    >>> now = 1_700_000_000_000
    >>> resolve_range(None, "now", now) == (now - 3_600_000, now)
    True
    >>> resolve_range("2023-11-14T22:00:00Z", "2023-11-14T21:00:00Z", now)
    Traceback (most recent call last):
    ...
    streamlearn.report.command.ArgumentError: --from (2023-11-14 22:00:00 UTC) must be before --to (2023-11-14 21:00:00 UTC)
    """  # noqa: E501
    try:
        to_ms = parse_time(to_text, now_ms, "--to")
        from_ms = (
            parse_time(from_text, now_ms, "--from")
            if from_text is not None
            else to_ms - DEFAULT_SPAN_MS
        )
    except ValueError as exc:
        raise ArgumentError(str(exc)) from None
    if from_ms >= to_ms:
        raise ArgumentError(
            f"--from ({format_time(from_ms)} UTC) must be before --to ({format_time(to_ms)} UTC)"
        )
    return from_ms, to_ms


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else many or one + 's'}"


def summary_line(report: Report) -> str:
    """One line for the terminal."""
    c = report.counts
    if report.empty:
        keys = ", ".join(repr(k) for k in sorted(report.options.keys))
        return (
            f"nothing found between {format_time(report.options.from_ms)} and "
            f"{format_time(report.options.to_ms)} UTC (event time)"
            + (f" for {keys}" if keys else "")
        )
    text = ", ".join(
        [
            _n(c["events"], "event"),
            _n(c["keys"], "key"),
            _n(c["windows"], "window"),
            _n(c["anomalies"], "anomaly", "anomalies"),
            _n(c["data_drift"] + c["concept_drift"], "drift record"),
            _n(c["promotions"], "promotion"),
            _n(c["predictions"], "prediction") + f" ({c['labelled']:,} labelled)",
            _n(c["dead_letters"], "dead letter"),
        ]
    )
    if report.missing_keys:
        text += "; no records for " + ", ".join(repr(k) for k in report.missing_keys)
    return text


def _quiet_kafka_logs() -> None:
    # aiokafka logs each failed connection attempt; the error we raise says it once.
    logger = logging.getLogger("aiokafka")
    if not logger.handlers and not logging.getLogger().handlers:
        logger.addHandler(logging.NullHandler())
        logger.propagate = False


def run(
    settings: Settings,
    *,
    from_text: str | None,
    to_text: str = "now",
    keys: Sequence[str] = (),
    output: Path | None = None,
    window: str | None = None,
    slack: str = "1h",
    max_delay: str | None = None,
    max_keys: int = 12,
    now_ms: int | None = None,
    include_plotlyjs: bool = True,
) -> tuple[Path, str]:
    """Read, build, render and write one report; returns the file and a summary line."""
    from streamlearn.report.reader import read_range, source_info
    from streamlearn.report.render import render_html

    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    from_ms, to_ms = resolve_range(from_text, to_text, now_ms)
    slack_ms = _duration(slack, "--slack")
    delay_ms = _duration(max_delay, "--max-delay") if max_delay is not None else None
    for key in keys:
        if not key:
            raise ArgumentError("--key must not be empty")
    if window is not None and ":" in window:  # a spec as in settings: tumbling:1m
        from streamlearn.analytics.windows import WindowSpec

        try:
            window = WindowSpec.parse(window).name
        except ValueError as exc:
            raise ArgumentError(f"--window: {exc}") from None
    options = ReportOptions.from_settings(settings, from_ms, to_ms, keys=keys, window=window)
    path = output if output is not None else Path(default_output_name(from_ms, to_ms))
    _quiet_kafka_logs()
    builder = ReportBuilder(options)
    read = asyncio.run(
        read_range(
            settings,
            builder.add,
            seek_ms=from_ms - slack_ms,
            stop_after_ms=to_ms + delay_ms if delay_ms is not None else None,
        )
    )
    report = builder.build()
    report.source = source_info(settings, read, slack_ms)
    report.generated_ms = now_ms
    page = render_html(report, include_plotlyjs=include_plotlyjs, max_keys=max_keys)
    _write(path, page)
    return path, summary_line(report)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise StreamlearnError(f"cannot write {path}: {exc.strerror or exc}") from None
