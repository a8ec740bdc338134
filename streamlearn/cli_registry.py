"""``streamlearn models ...``: the model registry from the command line.

Every command talks to Kafka (the registry topic) and the artifact store directly, with
the same settings as the workers; see docs/registry.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from streamlearn.errors import StreamlearnError

__all__ = ["models"]

T = TypeVar("T")


def _settings(ctx: click.Context) -> Any:
    """The settings of the enclosing ``streamlearn`` group (its --config), else defaults."""
    from streamlearn.config import load_settings

    parent = ctx.find_object(object)
    if hasattr(parent, "settings"):
        return parent.settings()
    return load_settings(getattr(parent, "config_file", None))


def _run(ctx: click.Context, action: Callable[[Any], Awaitable[T]]) -> T:
    """``action(client)`` with a started registry client; errors as clean messages."""
    from streamlearn.registry import RegistryClient

    async def go() -> T:
        async with RegistryClient(_settings(ctx)) as client:
            return await action(client)

    try:
        return asyncio.run(go())
    except StreamlearnError as exc:
        raise click.ClickException(str(exc)) from None


def _json_object(value: str | None, option: str) -> dict[str, Any] | None:
    """``value``: a JSON object, inline or in a file (None when not given)."""
    from streamlearn.cli_models import _json_object as parse

    return None if value is None else parse(value, option)


def _echo_json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())


def _short(value: Any, width: int = 40) -> str:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


_NAME = click.argument("name")
_BY = click.option("--by", help="Who makes the change (default: user@host).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def models() -> None:
    """The model registry: versions, stages and signed artifacts.

    A version starts in dev and is promoted to staging and production (one production
    version per name); rollback brings back the previous production version. Metadata
    is in the registry topic, artifacts in registry_dir (see docs/registry.md).
    """


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_models(ctx: click.Context, as_json: bool) -> None:
    """Every model: versions, latest, production and staging versions."""

    async def action(client: Any) -> list[dict[str, Any]]:
        return [entry.summary() for entry in client.entries()]

    summaries = _run(ctx, action)
    if as_json:
        _echo_json(summaries)
        return
    if not summaries:
        click.echo("no models registered", err=True)
        return
    rows = [["NAME", "VERSIONS", "LATEST", "PRODUCTION", "STAGING", "UPDATED"]]
    for s in summaries:
        staging = ",".join(str(n) for n in s["staging"]) or "-"
        production = str(s["production"]) if s["production"] is not None else "-"
        rows.append(
            [s["name"], str(s["versions"]), str(s["latest"]), production, staging, s["updated_at"]]
        )
    _table(rows)


@models.command()
@_NAME
@click.option(
    "--version",
    "ref",
    help="A version number, latest, or a stage (dev, staging, production, archived): "
    "that version's metadata and history. Default: every version.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def show(ctx: click.Context, name: str, ref: str | None, as_json: bool) -> None:
    """A model's versions, or one version's metadata and stage history."""

    async def action(client: Any) -> dict[str, Any]:
        if ref is None:
            return dict(client.entry(name).to_dict())
        return dict(client.get(name, ref).to_dict())

    doc = _run(ctx, action)
    if as_json:
        _echo_json(doc)
    elif ref is None:
        click.echo(f"{doc['name']} (revision {doc['revision']}, updated {doc['updated_at']})")
        rows = [["VERSION", "STAGE", "KIND", "CREATED", "BY", "METRICS", "DESCRIPTION"]]
        for v in doc["versions"]:
            rows.append(
                [
                    str(v["version"]),
                    v["stage"],
                    v["artifact"]["kind"],
                    v["created_at"],
                    v["created_by"],
                    _short(v["metrics"]),
                    _short(v["description"]),
                ]
            )
        _table(rows)
    else:
        art = doc["artifact"]
        for label, value in (
            ("name", doc["name"]),
            ("version", doc["version"]),
            ("stage", doc["stage"]),
            ("created", f"{doc['created_at']} by {doc['created_by']}"),
            ("description", doc["description"]),
            ("artifact", f"{art['kind']}, sha256 {art['sha256']}, {art['size_bytes']} bytes"),
            ("training data", doc["training_data"]),
            ("params", orjson.dumps(doc["params"]).decode()),
            ("metrics", orjson.dumps(doc["metrics"]).decode()),
            ("libraries", orjson.dumps(doc["library_versions"]).decode()),
        ):
            click.echo(f"{label + ':':15}{'' if value is None else value}")
        click.echo("history:")
        for h in doc["history"]:
            click.echo(f"  {h['at']}  {h['stage']:<10}  {h['by']}: {h['why']}")


@models.command()
@_NAME
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--metrics", help="Metrics as a JSON object (inline or a file).")
@click.option("--params", help="Parameters as a JSON object (inline or a file).")
@click.option("--training-data", help="Reference to the training data (path, URI, query...).")
@click.option("--description", default="", help="What this version is.")
@_BY
@click.pass_context
def register(
    ctx: click.Context,
    name: str,
    path: Path,
    metrics: str | None,
    params: str | None,
    training_data: str | None,
    description: str,
    by: str | None,
) -> None:
    """Register the signed model file PATH as the next version of NAME (in dev).

    PATH must be signed with this app's secret key, e.g. saved by `streamlearn train
    --save` (whose params and metrics are then the defaults). Unsigned or altered files,
    and files written by another major version of River or scikit-learn, are refused.
    """
    metrics_doc = _json_object(metrics, "--metrics")
    params_doc = _json_object(params, "--params")
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror or exc}") from None

    async def action(client: Any) -> Any:
        return await client.register_blob(
            name,
            blob,
            params=params_doc,
            metrics=metrics_doc,
            training_data=training_data,
            created_by=by,
            description=description,
        )

    version = _run(ctx, action)
    art = version.artifact
    click.echo(
        f"registered {name} v{version.version} ({art.kind}, sha256 {art.sha256[:12]}, "
        f"{art.size_bytes} bytes) in {version.stage}"
    )


@models.command()
@_NAME
@click.argument("version", type=int)
@click.option(
    "--to", "stage", required=True, help="staging or production (production archives the old)."
)
@_BY
@click.option("--why", required=True, help="Why (recorded in the history).")
@click.pass_context
def promote(
    ctx: click.Context, name: str, version: int, stage: str, by: str | None, why: str
) -> None:
    """Promote VERSION of NAME to staging or production."""
    from streamlearn.registry.entry import PROMOTABLE

    if stage not in PROMOTABLE:
        hint = " (use `streamlearn models archive`)" if stage == "archived" else ""
        raise click.BadParameter(
            f"{stage!r}: versions are promoted to staging or production{hint}", param_hint="--to"
        )

    async def action(client: Any) -> tuple[Any, Any]:
        before = client.entry(name).production() if name in client.state.entries else None
        return before, await client.promote(name, version, stage, by=by, why=why)

    before, after = _run(ctx, action)
    replaced = (
        f" (v{before.version} archived)"
        if stage == "production" and before is not None and before.version != version
        else ""
    )
    click.echo(f"{name} v{after.version} is now in {after.stage}{replaced}")


@models.command()
@_NAME
@click.argument("version", type=int)
@_BY
@click.option("--why", default="", help="Why (recorded in the history).")
@click.pass_context
def archive(ctx: click.Context, name: str, version: int, by: str | None, why: str) -> None:
    """Archive VERSION of NAME (a production version also leaves the rollback lineage)."""

    async def action(client: Any) -> Any:
        return await client.archive(name, version, by=by, why=why)

    after = _run(ctx, action)
    click.echo(f"{name} v{after.version} archived")


@models.command()
@_NAME
@_BY
@click.option("--why", required=True, help="Why (recorded in the history).")
@click.pass_context
def rollback(ctx: click.Context, name: str, by: str | None, why: str) -> None:
    """Make the previous production version of NAME production again; archive the current."""

    async def action(client: Any) -> tuple[Any, Any]:
        before = client.entry(name).production()
        return before, await client.rollback(name, by=by, why=why)

    before, after = _run(ctx, action)
    was = f" (v{before.version} archived)" if before is not None else ""
    click.echo(f"{name}: v{after.version} is in production again{was}")
