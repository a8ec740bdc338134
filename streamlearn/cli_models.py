"""``streamlearn train`` and ``streamlearn evaluate``: offline models on a CSV or JSON-lines file.

``train`` searches, fits and evaluates a scikit-learn model (and can save it for
serving); ``evaluate`` runs a River learner over the file in progressive validation,
as the stream would. Both write report.json and report.html (see docs/offline.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import orjson

from streamlearn.errors import StreamlearnError

__all__ = ["evaluate", "train"]


def _settings(ctx: click.Context) -> Any:
    """The settings of the enclosing ``streamlearn`` group (its --config), else defaults."""
    from streamlearn.config import load_settings

    parent = ctx.find_object(object)
    if hasattr(parent, "settings"):
        return parent.settings()
    return load_settings(getattr(parent, "config_file", None))


def _split_names(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [name.strip() for name in value.split(",") if name.strip()]


def _json_object(value: str, option: str) -> dict[str, Any]:
    """``value``: a JSON object, inline or as a file path."""
    text = value.strip()
    if not text.startswith(("{", "[")):
        path = Path(value)
        if not path.is_file():
            raise click.BadParameter(
                f"{value}: no such file (or inline JSON object)", param_hint=option
            )
        text = path.read_text()
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint=option) from None
    if not isinstance(data, dict):
        raise click.BadParameter("must be a JSON object", param_hint=option)
    return data


def _default_output(file: Path, model: str, suffix: str = "") -> Path:
    return Path("reports") / f"{file.stem}-{model}{suffix}"


def _check_name_exists(name: str, registry: dict[str, dict[str, Any]], what: str) -> None:
    every = sorted({n for names in registry.values() for n in names})
    if name not in every:
        raise StreamlearnError(f"unknown {what} {name!r}; known: {', '.join(every)}")


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


_FILE = click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
_TARGET = click.option("--target", required=True, help="Column to predict.")
_TASK = click.option(
    "--task",
    type=click.Choice(["classification", "regression"]),
    help="Default: classification for boolean, text or integer targets with at most 20 "
    "values, else regression.",
)
_FEATURES = click.option(
    "--features",
    help="Comma-separated numeric columns (default: every numeric column but "
    "the target and the time column).",
)
_FORMAT = click.option(
    "--format", "fmt", type=click.Choice(["csv", "jsonl"]), help="Default: by suffix."
)
_TIME = click.option(
    "--time-column", help="Sort the rows by this column (numbers or date-times); not a feature."
)
_SEED = click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")


@click.command()
@_FILE
@_TARGET
@click.option(
    "--model",
    "model",
    required=True,
    help="hgb, rf, voting, stacking, logreg (classification), linear, ridge (regression).",
)
@_TASK
@_FEATURES
@_FORMAT
@_TIME
@click.option(
    "--cv",
    type=click.Choice(["kfold", "timeseries"]),
    help="Folds: shuffled (stratified) k-fold, or TimeSeriesSplit (default with --time-column).",
)
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True)
@click.option(
    "--search",
    type=click.Choice(["none", "random", "halving"]),
    default="random",
    show_default=True,
    help="Hyper-parameter search: none (defaults), RandomizedSearchCV, HalvingRandomSearchCV.",
)
@click.option(
    "--n-iter", type=click.IntRange(min=1), default=20, show_default=True, help="Candidates."
)
@click.option(
    "--space",
    help="JSON object (inline or a file) overriding search spaces, e.g. "
    '\'{"hgb": {"learning_rate": {"loguniform": [0.01, 0.1]}}}\'.',
)
@click.option("--scoring", help="Search score (scikit-learn name; default: accuracy or r2).")
@click.option(
    "--test-size",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.2,
    show_default=True,
    help="Share of rows held out for evaluation (the last rows for timeseries).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    help="Report directory (default: reports/<file>-<model>).",
)
@click.option(
    "--save",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the fitted model here, signed with the app's secret key.",
)
@_SEED
@click.option("--jobs", type=int, default=1, show_default=True, help="Parallel fits (-1: all).")
@click.option("--no-learning-curve", is_flag=True, help="Skip the learning curve (faster).")
@click.option("--no-html", is_flag=True, help="Write report.json only.")
@click.option("-q", "--quiet", is_flag=True, help="No progress messages.")
@click.pass_context
def train(
    ctx: click.Context,
    file: Path,
    target: str,
    model: str,
    task: str | None,
    features: str | None,
    fmt: str | None,
    time_column: str | None,
    cv: str | None,
    folds: int,
    search: str,
    n_iter: int,
    space: str | None,
    scoring: str | None,
    test_size: float,
    output: Path | None,
    save: Path | None,
    seed: int,
    jobs: int,
    no_learning_curve: bool,
    no_html: bool,
    quiet: bool,
) -> None:
    """Train a scikit-learn model on the CSV or JSON-lines FILE and report how good it is.

    Searches the model's hyper-parameters with cross-validation, fits the best on the
    training rows, evaluates it on held-out rows and writes report.json and a
    self-contained report.html. --save keeps the model for serving.
    """
    from streamlearn.models.offline import (
        TrainOptions,
        prepare_dataset,
        read_table,
        save_model,
        write_report,
    )
    from streamlearn.models.offline import train as run_train
    from streamlearn.models.offline.registry import MODELS

    spaces = _json_object(space, "--space") if space is not None else None

    def say(message: str) -> None:
        if not quiet:
            click.echo(f"{model}: {message}...", err=True)

    try:
        _check_name_exists(model, MODELS, "model")
        key = _settings(ctx).signing_key() if save is not None else None
        dataset = prepare_dataset(
            read_table(file, fmt),
            target,
            features=_split_names(features),
            task=task,  # type: ignore[arg-type]
            time_column=time_column,
        )
        options = TrainOptions(
            model=model,
            cv=cv or ("timeseries" if time_column else "kfold"),  # type: ignore[arg-type]
            folds=folds,
            search=search,  # type: ignore[arg-type]
            n_iter=n_iter,
            seed=seed,
            test_size=test_size,
            scoring=scoring,
            spaces=spaces,
            jobs=jobs,
            learning_curve=not no_learning_curve,
        )
        result = run_train(dataset, options, source=str(file), progress=say)
        paths = write_report(
            result.report, output or _default_output(file, model), html_page=not no_html
        )
        if save is not None:
            assert key is not None
            save_model(result.saved, save, key)
    except StreamlearnError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:  # an unreadable FILE, an unwritable --output or --save
        raise click.ClickException(str(exc)) from None
    report = result.report
    rows, protocol, metrics = report["rows"], report["protocol"], report["metrics"]
    names = (
        ("accuracy", "f1", "roc_auc", "log_loss")
        if dataset.task == "classification"
        else ("mae", "rmse", "r2")
    )
    first = names[0] if dataset.task == "classification" else "r2"
    click.echo(
        f"{model} on {file.name}: {dataset.task}, {rows['train']} training / "
        f"{rows['test']} held-out rows, {len(dataset.features)} features"
    )
    click.echo(
        f"  cv {protocol['scoring']} {_fmt(report['cv']['mean'])} ± {_fmt(report['cv']['std'])} "
        f"({protocol['folds']} folds {protocol['cv']}, search {protocol['search']})"
    )
    click.echo(
        "  held-out: "
        + ", ".join(f"{n} {_fmt(metrics.get(n))}" for n in names)
        + f" (baseline {first} {_fmt(report['baseline'].get(first))})"
    )
    click.echo(f"  {report['timing']['total_s']:.1f} s; report: {', '.join(map(str, paths))}")
    if save is not None:
        latency = report["timing"]["predict_one_us"]
        shown = f"{latency:.0f} µs" if latency is not None else "-"
        click.echo(f"  saved {save} (predict_one: {shown} per event)")


@click.command()
@_FILE
@_TARGET
@click.option(
    "--model",
    "model",
    required=True,
    help="logreg-rbf, logreg, tree, arf, naive-bayes (classification); linear, tree, arf "
    "(regression).",
)
@_TASK
@_FEATURES
@_FORMAT
@_TIME
@click.option("--params", help="The learner's parameters as JSON, e.g. '{\"n_models\": 10}'.")
@_SEED
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    help="Report directory (default: reports/<file>-<model>-progressive).",
)
@click.option("--html", "html_page", is_flag=True, help="Write report.html too.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def evaluate(
    file: Path,
    target: str,
    model: str,
    task: str | None,
    features: str | None,
    fmt: str | None,
    time_column: str | None,
    params: str | None,
    seed: int,
    output: Path | None,
    html_page: bool,
    no_progress: bool,
) -> None:
    """Progressive validation of a River learner over the CSV or JSON-lines FILE.

    Each row in order (sorted by --time-column if given): predict, score, then learn,
    as the stream would. Reports the metrics at the end and along the way, and the
    learner's time per event.
    """
    from tqdm import tqdm

    from streamlearn.models.learners import LEARNERS
    from streamlearn.models.offline import (
        prepare_dataset,
        progressive_validate,
        read_table,
        write_report,
    )

    learner_params = _json_object(params, "--params") if params is not None else None
    try:
        _check_name_exists(model, LEARNERS, "learner")  # type: ignore[arg-type]
        dataset = prepare_dataset(
            read_table(file, fmt),
            target,
            features=_split_names(features),
            task=task,  # type: ignore[arg-type]
            time_column=time_column,
        )
        with tqdm(total=dataset.n_rows, unit="ev", disable=no_progress, dynamic_ncols=True) as bar:
            report = progressive_validate(
                dataset,
                model,
                seed=seed,
                params=learner_params,
                source=str(file),
                on_row=bar.update,
            )
        paths = write_report(
            report, output or _default_output(file, model, "-progressive"), html_page=html_page
        )
    except StreamlearnError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:  # an unreadable FILE, an unwritable --output or --save
        raise click.ClickException(str(exc)) from None
    metrics = ", ".join(f"{n} {_fmt(v)}" for n, v in report["metrics"].items())
    click.echo(
        f"{model} (progressive) on {file.name}: {report['rows']} rows, {metrics}; "
        f"{_fmt(report['us_per_event'])} µs/event"
    )
    click.echo(f"  report: {', '.join(map(str, paths))}")
