"""``streamlearn kafka start|stop|status``: the local single-node broker."""

from __future__ import annotations

import sys

import click

from streamlearn.config import Settings, load_settings
from streamlearn.errors import StreamlearnError


def local_broker(settings: Settings):  # type: ignore[no-untyped-def]
    """The LocalBroker described by ``settings``."""
    from streamlearn.kafka import LocalBroker

    return LocalBroker(
        data_dir=settings.data_dir / "kafka",
        port=settings.kafka_port,
        controller_port=settings.kafka_controller_port,
        cache_dir=settings.kafka_cache_dir,
        kafka_home=settings.kafka_home,
        heap_mb=settings.kafka_heap_mb,
        partitions=settings.topic_partitions,
    )


def _settings(ctx: click.Context) -> Settings:
    parent = ctx.find_object(object)
    config_file = getattr(parent, "config_file", None)
    return load_settings(config_file)


@click.group()
def kafka() -> None:
    """Run a real single-node Apache Kafka broker (KRaft) on 127.0.0.1.

    Jars come from Maven Central (or $KAFKA_HOME/libs) and are cached; data and the
    broker log live under <data_dir>/kafka. Ports: STREAMLEARN_KAFKA_PORT and
    STREAMLEARN_KAFKA_CONTROLLER_PORT.
    """


@kafka.command()
@click.pass_context
def install(ctx: click.Context) -> None:
    """Fetch the broker's jars into the cache (done by `start` too; a no-op when cached)."""
    try:
        lib = local_broker(_settings(ctx)).ensure_jars()
    except StreamlearnError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"kafka jars in {lib}")


@kafka.command()
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds to wait.")
@click.pass_context
def start(ctx: click.Context, timeout: float) -> None:
    """Start the broker (no-op when it already runs) and wait until it answers."""
    try:
        broker = local_broker(_settings(ctx))
        status = broker.start(timeout_s=timeout)
    except StreamlearnError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"kafka running: {status.bootstrap_servers} (pid {status.pid}, log {status.log_file})"
    )


@kafka.command()
@click.option("--timeout", type=float, default=30.0, show_default=True, help="SIGKILL after S s.")
@click.pass_context
def stop(ctx: click.Context, timeout: float) -> None:
    """Stop the broker: SIGTERM, then SIGKILL after --timeout."""
    try:
        stopped = local_broker(_settings(ctx)).stop(timeout_s=timeout)
    except StreamlearnError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("kafka stopped" if stopped else "kafka was not running")


@kafka.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Print the broker's state; exit status 1 when it is not running."""
    try:
        state = local_broker(_settings(ctx)).status()
    except StreamlearnError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(state.detail)
    sys.exit(0 if state.running else 1)
