"""The ``streamlearn`` command."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

import streamlearn
from streamlearn.config import Settings, load_settings
from streamlearn.errors import StreamlearnError


class _Context:
    def __init__(self, config_file: Path | None) -> None:
        self.config_file = config_file
        self._settings: Settings | None = None

    def settings(self, **overrides: Any) -> Settings:
        if overrides:
            return load_settings(self.config_file, **overrides)
        if self._settings is None:
            self._settings = load_settings(self.config_file)
        return self._settings


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(streamlearn.__version__, prog_name="streamlearn")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="STREAMLEARN_CONFIG",
    help="TOML settings file (keys as in `streamlearn config`). Env: STREAMLEARN_CONFIG.",
)
@click.pass_context
def main(ctx: click.Context, config_file: Path | None) -> None:
    """Real-time analytics and online machine learning on Apache Kafka.

    Settings come from STREAMLEARN_* environment variables and an optional TOML file;
    `streamlearn config` prints the values in force.
    """
    ctx.obj = _Context(config_file)


@main.command()
@click.option("--show-secrets", is_flag=True, help="Print secrets instead of masking them.")
@click.pass_obj
def config(obj: _Context, show_secrets: bool) -> None:
    """Print the settings in force as TOML-style `name = value` lines."""
    try:
        settings = obj.settings()
    except StreamlearnError as exc:
        raise _fail(exc) from None
    for name, value in settings.masked().items():
        field = getattr(settings, name)
        if show_secrets and hasattr(field, "get_secret_value"):
            value = field.get_secret_value()
        # JSON scalars are valid TOML values: the output can be pasted into --config.
        click.echo(f"{name} = {json.dumps(value)}" if value is not None else f"# {name} (unset)")


@main.command()
@click.option(
    "-l",
    "--loglevel",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default=None,
    help="Log level (default: the log_level setting).",
)
@click.pass_obj
def worker(obj: _Context, loglevel: str | None) -> None:
    """Run a worker: consume events, keep state, publish results (Ctrl-C stops it).

    Start as many as you like with the same app_id: they share the partitions.
    """
    import faust

    from streamlearn.topics import ensure_topics_sync
    from streamlearn.worker import build_worker

    try:
        settings = obj.settings()
        if settings.event_loop == "uvloop":
            # Before anything creates the loop (the app, the worker).
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        _ensure_topics_or_explain(settings, ensure_topics_sync)
        built = build_worker(settings)  # e.g. a saved model that does not verify
    except StreamlearnError as exc:
        raise _fail(exc) from None
    faust_worker = faust.Worker(
        built.app,
        loglevel=loglevel or settings.log_level,
        quiet=True,
        override_logging=True,
    )
    # Faust's terminal spinner, at log levels from warning up, sets the root logger to
    # DEBUG so that every debug record turns it: each produced record is then formatted
    # into a log record nobody sees (5-10 % of a busy worker's time).
    faust_worker.spinner = None
    faust_worker.execute_from_commandline()


def _ensure_topics_or_explain(settings: Settings, ensure: Any) -> None:
    try:
        ensure(settings)
    except Exception as exc:  # aiokafka raises several unrelated types here
        where = settings.bootstrap_servers
        hint = (
            "start the local broker with `streamlearn kafka start`"
            if settings.uses_local_broker
            else "check STREAMLEARN_BROKER_URL and the broker's security settings"
        )
        raise StreamlearnError(f"cannot reach Kafka at {where} ({exc!r}): {hint}") from None


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), help="Default: by suffix.")
@click.option("--key-column", help="Column holding the entity key (required for CSV).")
@click.option("--time-column", help="Column holding the event time (epoch ms or ISO-8601).")
@click.option(
    "--value-columns",
    help="Comma-separated numeric columns (default: all but key, time and label).",
)
@click.option("--label-column", help="Column holding the label.")
@click.option("--rate", type=float, help="Events per second (default: as fast as possible).")
@click.option("--speedup", type=float, help="Replay at X times event-time speed.")
@click.option("--topic", help="Target topic (default: the events topic).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.pass_obj
def replay(
    obj: _Context,
    file: Path,
    fmt: str | None,
    key_column: str | None,
    time_column: str | None,
    value_columns: str | None,
    label_column: str | None,
    rate: float | None,
    speedup: float | None,
    topic: str | None,
    no_progress: bool,
) -> None:
    """Publish the events of a CSV or JSON-lines FILE to the events topic.

    JSON lines without column options are sent byte for byte (invalid ones too: the
    worker's dead-letter topic says what is wrong with them).
    """
    from tqdm import tqdm

    from streamlearn.replay import ColumnMap, Pacer, count_lines, file_format, iter_records
    from streamlearn.replay import replay as run_replay

    columns = ColumnMap(
        key_column=key_column,
        time_column=time_column,
        value_columns=[c.strip() for c in value_columns.split(",")] if value_columns else None,
        label_column=label_column,
    )
    try:
        settings = obj.settings()
        Pacer(rate, speedup)  # validate before touching Kafka
        records = iter_records(file, columns, fmt)
        total = count_lines(file) - (1 if file_format(file, fmt) == "csv" else 0)
        with tqdm(total=total, unit="ev", disable=no_progress, dynamic_ncols=True) as bar:
            sent = asyncio.run(
                run_replay(
                    records, settings, topic=topic, rate=rate, speedup=speedup, on_sent=bar.update
                )
            )
    except StreamlearnError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:  # pragma: no cover
        sys.exit(130)
    click.echo(f"sent {sent} events to {topic or settings.topic('events')}", err=True)


@main.command()
@click.argument("source", metavar="INPUT", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV to write: the input's columns plus anomaly_score, is_anomaly, episode_id, error.",
)
@click.option("--key-column", help="Column holding the entity key (default: one series).")
@click.option("--time-column", help="Column holding the event time (epoch ms or ISO-8601).")
@click.option(
    "--value-columns", help="Comma-separated numeric columns (default: all but key and time)."
)
@click.option(
    "--detector",
    help="Detector name, or several joined by '+' (default: the anomaly_detector setting).",
)
@click.option("--params", help="Detector parameters as JSON, e.g. '{\"window\": 512}'.")
@click.option("--threshold", type=float, help="Anomaly threshold (default: anomaly_threshold).")
@click.option("--warmup", type=int, help="Events per key before alerts (default: setting).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.pass_obj
def detect(
    obj: _Context,
    source: Path,
    output: Path,
    key_column: str | None,
    time_column: str | None,
    value_columns: str | None,
    detector: str | None,
    params: str | None,
    threshold: float | None,
    warmup: int | None,
    no_progress: bool,
) -> None:
    """Score every row of the CSV file INPUT for anomalies, offline.

    The same code as the worker's anomaly agent: with the same settings, replaying
    INPUT into a worker gives the same scores, row for row. Rows the worker would
    dead-letter get an empty score and the reason in the error column.
    """
    import orjson
    from tqdm import tqdm

    from streamlearn.models.anomaly.batch import detect_csv
    from streamlearn.replay import count_lines

    overrides: dict[str, Any] = {}
    if detector is not None:
        overrides["anomaly_detector"] = detector
    if params is not None:
        try:
            overrides["anomaly_params"] = orjson.loads(params)
        except orjson.JSONDecodeError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--params") from None
        if not isinstance(overrides["anomaly_params"], dict):
            raise click.BadParameter("must be a JSON object", param_hint="--params")
    if threshold is not None:
        overrides["anomaly_threshold"] = threshold
    if warmup is not None:
        overrides["anomaly_warmup_events"] = warmup
    try:
        settings = obj.settings(anomaly_enabled=True, **overrides)
        if not source.is_file():
            raise StreamlearnError(f"{source}: no such file")
        total = max(count_lines(source) - 1, 0)
        with tqdm(total=total, unit="row", disable=no_progress, dynamic_ncols=True) as bar:
            summary = detect_csv(
                source,
                output,
                key_column=key_column,
                time_column=time_column,
                value_columns=[c.strip() for c in value_columns.split(",")]
                if value_columns
                else None,
                detector=settings.anomaly_detector,
                params=settings.anomaly_params,
                policy=settings.alert_policy(),
                on_row=bar.update,
            )
    except StreamlearnError as exc:
        raise _fail(exc) from None
    click.echo(
        f"scored {summary.scored} of {summary.rows} rows ({summary.keys} keys): "
        f"{summary.anomalies} anomalous, {summary.alerts} alerts, {summary.errors} errors "
        f"-> {output}",
        err=True,
    )


@main.command()
@click.argument("topic")
@click.option("--from-beginning", is_flag=True, help="Start at the oldest record.")
@click.option("-n", "--max", "max_records", type=int, help="Stop after N records.")
@click.option("--timeout", type=float, help="Stop after S seconds.")
@click.option("--raw", is_flag=True, help="Print record values as they are.")
@click.pass_obj
def tail(
    obj: _Context,
    topic: str,
    from_beginning: bool,
    max_records: int | None,
    timeout: float | None,
    raw: bool,
) -> None:
    """Print the records of TOPIC for humans.

    TOPIC is a logical name (aggregates, anomalies, predictions, drift, deadletter,
    events) or a full topic name.
    """
    from streamlearn.tail import tail as run_tail
    from streamlearn.topics import TOPIC_NAMES

    try:
        settings = obj.settings()
        name = settings.topic(topic) if topic in TOPIC_NAMES else topic
        asyncio.run(
            run_tail(
                settings,
                name,
                from_beginning=from_beginning,
                max_records=max_records,
                timeout_s=timeout,
                raw=raw,
            )
        )
    except StreamlearnError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:  # pragma: no cover
        pass


@main.command()
@click.option(
    "--from",
    "from_text",
    metavar="TIME",
    help="Start of the range, inclusive: ISO-8601 with a zone, epoch ms, now, or relative "
    "like -1h. Default: 1 hour before --to.",
)
@click.option(
    "--to",
    "to_text",
    metavar="TIME",
    default="now",
    show_default=True,
    help="End of the range, exclusive (same forms as --from).",
)
@click.option("--key", "keys", multiple=True, help="Only this key (repeat for several).")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="HTML file to write. Default: streamlearn-report-<from>-<to>.html.",
)
@click.option("--window", help="Window spec to chart, e.g. tumbling-1m (default: the first).")
@click.option(
    "--slack",
    default="1h",
    show_default=True,
    metavar="DURATION",
    help="Read records published from --from minus this (events stamped ahead of the clock).",
)
@click.option(
    "--max-delay",
    metavar="DURATION",
    help="Stop reading a partition at its first record published this long after --to "
    "(default: read to the end; needed for replayed history).",
)
@click.option(
    "--max-keys", type=click.IntRange(min=1), default=12, show_default=True, help="Keys charted."
)
@click.pass_obj
def report(
    obj: _Context,
    from_text: str | None,
    to_text: str,
    keys: tuple[str, ...],
    output: Path | None,
    window: str | None,
    slack: str,
    max_delay: str | None,
    max_keys: int,
) -> None:
    """Write an HTML report of a range of event time: aggregates, anomalies, model
    metrics, drift and promotions, dead letters.

    Reads the topics straight from Kafka (no consumer group, nothing committed) and
    keeps the records whose event time is in [--from, --to). The page is self-contained
    (plotly.js inlined): it opens offline.
    """
    from streamlearn.report import command as report_command

    try:
        settings = obj.settings()
        written, summary = report_command.run(
            settings,
            from_text=from_text,
            to_text=to_text,
            keys=keys,
            output=output,
            window=window,
            slack=slack,
            max_delay=max_delay,
            max_keys=max_keys,
        )
    except report_command.ArgumentError as exc:
        raise click.UsageError(str(exc)) from None
    except StreamlearnError as exc:
        raise _fail(exc) from None
    click.echo(f"report: {summary} -> {written}", err=True)


@main.command()
@click.option("--duration", type=float, help="Stop after S seconds (default: Ctrl-C).")
@click.option("--rate", type=float, default=250.0, show_default=True, help="Events per second.")
@click.pass_obj
def demo(obj: _Context, duration: float | None, rate: float) -> None:
    """Run everything on this machine: broker, worker, a real data set, live summary.

    Starts the local broker unless STREAMLEARN_BROKER_URL is set, replays River's
    S&P 500 daily returns (ten stocks = ten keys; each day labelled with the next
    day's equal-weighted portfolio return) and shows what the worker publishes.
    Ctrl-C stops everything it started.
    """
    from streamlearn.demo import run_demo

    try:
        code = run_demo(obj.settings(), duration_s=duration, rate=rate)
    except StreamlearnError as exc:
        raise _fail(exc) from None
    sys.exit(code)


from streamlearn.kafka.cli import kafka  # noqa: E402

main.add_command(kafka)


def _register_model_commands() -> None:
    from streamlearn.cli_models import evaluate, train

    main.add_command(train)
    main.add_command(evaluate)


_register_model_commands()


def _register_registry_commands() -> None:
    from streamlearn.cli_registry import models

    main.add_command(models)


_register_registry_commands()
