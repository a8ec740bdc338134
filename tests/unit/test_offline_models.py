"""Offline models: `train` and `evaluate` on real bundled data sets, saved models, errors."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result
from river import datasets, evaluate, metrics
from sklearn.datasets import load_iris

from streamlearn.cli import _Context
from streamlearn.cli_models import evaluate as evaluate_command
from streamlearn.cli_models import train as train_command
from streamlearn.models.envelope import EnvelopeError, seal
from streamlearn.models.learners import LearnerError, build_learner, learner_names
from streamlearn.models.offline import (
    MissingFeaturesError,
    OfflineError,
    TrainOptions,
    load_model,
    merge_spaces,
    prepare_dataset,
    progressive_validate,
    read_table,
    render_html,
    save_model,
    train,
)
from streamlearn.models.offline import report as report_module
from streamlearn.models.offline.registry import (
    SEARCH_SPACES,
    build_model,
    model_names,
    search_distributions,
)

KEY = bytes.fromhex("ab" * 32)


@click.group()
@click.pass_context
def cli(ctx: click.Context) -> None:
    """The two commands as the streamlearn group registers them."""
    ctx.obj = _Context(None)


cli.add_command(train_command)
cli.add_command(evaluate_command)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Phishing (1,250 rows, binary), TrumpApproval (1,001 rows, regression), iris (3 classes)."""
    root = tmp_path_factory.mktemp("offline")
    pd.DataFrame([{**x, "is_phishing": y} for x, y in datasets.Phishing()]).to_csv(
        root / "phishing.csv", index=False
    )
    pd.DataFrame([{**x, "approval": y} for x, y in datasets.TrumpApproval()]).to_csv(
        root / "trump.csv", index=False
    )
    iris = load_iris(as_frame=True)
    frame = iris.frame.assign(species=iris.target_names[iris.target]).drop(columns="target")
    frame.to_json(root / "iris.jsonl", orient="records", lines=True)
    return root


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    for name in list(os.environ):
        if name.startswith("STREAMLEARN_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("STREAMLEARN_SECRET_KEY", KEY.hex())
    monkeypatch.setenv("STREAMLEARN_DATA_DIR", str(tmp_path / "data"))
    return CliRunner()


def _invoke(runner: CliRunner, *args: Any) -> Result:
    return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _fails(result: Result, *words: str, code: tuple[int, ...] = (1, 2)) -> None:
    assert result.exit_code in code, result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output, result.output


@pytest.fixture(scope="module")
def phishing_run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`train` of hgb on Phishing, once for the module: its report and saved model."""
    out = tmp_path_factory.mktemp("phishing-hgb")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STREAMLEARN_SECRET_KEY", KEY.hex())
        result = CliRunner().invoke(
            cli,
            [
                "train",
                str(data_dir / "phishing.csv"),
                "--target=is_phishing",
                "--model=hgb",
                "--folds=3",
                "--n-iter=3",
                f"--output={out}",
                f"--save={out / 'phishing.model'}",
            ],
            catch_exceptions=False,
        )
    assert result.exit_code == 0, result.output
    return {
        "dir": out,
        "output": result.output,
        "report": json.loads((out / "report.json").read_text()),
    }


def test_train_phishing_report(phishing_run: dict[str, Any]) -> None:
    report = phishing_run["report"]
    assert report["task"] == "classification"
    assert report["classes"] == [False, True]
    assert report["rows"] == {
        "total": 1250,
        "train": 1000,
        "test": 250,
        "dropped_missing_target": 0,
    }
    m = report["metrics"]
    assert m["accuracy"] > 0.85 and m["roc_auc"] > 0.9 and 0 < m["log_loss"] < 0.5
    assert m["f1_average"] == "binary" and m["f1"] > 0.8
    assert sum(map(sum, m["confusion_matrix"])) == 250
    assert m["accuracy"] > report["baseline"]["accuracy"] + 0.2
    assert len(report["cv"]["scores"]) == 3 and report["cv"]["mean"] > 0.85
    assert report["protocol"]["cv"] == "stratified-kfold"
    assert report["search"]["n_candidates"] == 3
    assert set(report["model"]["params"]) == set(SEARCH_SPACES["classification"]["hgb"])
    curve = report["learning_curve"]
    assert len(curve["train_sizes"]) == 5 and curve["test_mean"][-1] > 0.85
    importance = report["importance"]["features"]
    assert len(importance) == 9 and importance[0]["mean"] > 0.01
    assert report["curves"]["roc"][0]["label"] is True
    assert "held-out: accuracy" in phishing_run["output"]
    page = (phishing_run["dir"] / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "Confusion matrix" in page
    # nothing to fetch: no external script, stylesheet or image (plotly.js itself is inline
    # and mentions URLs in its code, which is fine)
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)=["']?(https?:)?//""", page)


def test_train_report_html_has_inline_plotly(phishing_run: dict[str, Any]) -> None:
    pytest.importorskip("plotly")
    page = (phishing_run["dir"] / "report.html").read_text()
    assert "Plotly.newPlot" in page and len(page) > 1_000_000  # plotly.js inlined
    assert '<script src="' not in page


def test_html_figures_with_plotly_js(
    phishing_run: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page's charts, whether or not plotly is installed: its JS is stubbed here."""
    monkeypatch.setattr(report_module, "plotly_js", lambda: "/* plotly.js */")
    page = render_html(phishing_run["report"])
    assert page.count("Plotly.newPlot(") == 4  # confusion, ROC, learning curve, importance
    assert '"type":"heatmap"' in page and '"orientation":"h"' in page
    monkeypatch.setattr(report_module, "plotly_js", lambda: None)
    assert "Charts need the <code>plotly</code>" in render_html(phishing_run["report"])


def test_saved_model_loads_and_predicts(phishing_run: dict[str, Any], data_dir: Path) -> None:
    model = load_model(phishing_run["dir"] / "phishing.model", KEY)
    assert model.task == "classification" and model.model == "hgb"
    assert model.metrics["accuracy"] == phishing_run["report"]["metrics"]["accuracy"]
    assert set(model.versions) >= {"scikit-learn", "numpy", "river"}
    frame = read_table(data_dir / "phishing.csv")
    rows = frame[model.features].head(50).to_dict("records")
    expected = model.pipeline.predict(frame[model.features].head(50).to_numpy(float))
    assert [model.predict_one(r) for r in rows] == expected.tolist()
    assert model.predict_many(rows) == expected.tolist()
    proba = model.predict_proba_one(rows[0])
    assert set(proba) == {False, True} and math.isclose(sum(proba.values()), 1.0)
    with pytest.raises(MissingFeaturesError, match="missing features https, long_url") as info:
        model.predict_one({k: v for k, v in rows[0].items() if k not in ("https", "long_url")})
    assert info.value.missing == ["https", "long_url"]
    with pytest.raises(OfflineError, match="feature https must be a number"):
        model.predict_one({**rows[0], "https": "yes"})
    assert model.predict_one({**rows[0], "https": None}) in (False, True)  # imputed


def test_saved_model_matches_in_memory(data_dir: Path, tmp_path: Path) -> None:
    dataset = prepare_dataset(read_table(data_dir / "phishing.csv"), "is_phishing")
    options = TrainOptions("logreg", folds=3, n_iter=2, learning_curve=False, importance_repeats=1)
    result = train(dataset, options)
    path = save_model(result.saved, tmp_path / "m.model", KEY)
    loaded = load_model(path, KEY)
    rows = dataset.rows()[:100]
    assert [loaded.predict_one(r) for r in rows] == [result.saved.predict_one(r) for r in rows]
    assert loaded.predict_proba_one(rows[1]) == result.saved.predict_proba_one(rows[1])
    again = train(dataset, options)  # same seed, same model
    assert again.report["metrics"] == result.report["metrics"]


def test_tampered_or_foreign_model_is_rejected(
    phishing_run: dict[str, Any], tmp_path: Path
) -> None:
    blob = bytearray((phishing_run["dir"] / "phishing.model").read_bytes())
    blob[-100] ^= 0x01
    tampered = tmp_path / "tampered.model"
    tampered.write_bytes(bytes(blob))
    with pytest.raises(EnvelopeError, match="signature mismatch"):
        load_model(tampered, KEY)
    with pytest.raises(EnvelopeError, match="signature mismatch"):
        load_model(phishing_run["dir"] / "phishing.model", b"k" * 32)
    state = tmp_path / "state.bin"
    state.write_bytes(seal({"not": "a model"}, KEY, kind="state"))
    with pytest.raises(OfflineError, match="'state' envelope, not a saved model"):
        load_model(state, KEY)
    with pytest.raises(OfflineError, match="no such file"):
        load_model(tmp_path / "nope.model", KEY)


def test_train_regression_timeseries_halving(
    runner: CliRunner, data_dir: Path, tmp_path: Path
) -> None:
    result = _invoke(
        runner,
        "train",
        data_dir / "trump.csv",
        "--target=approval",
        "--model=ridge",
        "--time-column=ordinal_date",
        "--search=halving",
        "--n-iter=6",
        "--folds=3",
        f"--output={tmp_path}",
        "--no-html",
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["task"] == "regression" and report["protocol"]["cv"] == "timeseries"
    assert "ordinal_date" not in report["features"] and len(report["features"]) == 5
    assert report["search"]["candidates"][0]["iteration"] >= 1  # the last halving round first
    m = report["metrics"]
    assert 0 < m["mae"] < 1.0 and m["rmse"] >= m["mae"]
    assert m["mae"] < report["baseline"]["mae"] / 2
    assert "predicted_vs_actual" in report["curves"]
    assert not (tmp_path / "report.html").exists()


def test_train_regression_kfold_and_space_override(
    runner: CliRunner, data_dir: Path, tmp_path: Path
) -> None:
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"ridge": {"alpha": [0.5]}}))
    result = _invoke(
        runner,
        "train",
        data_dir / "trump.csv",
        "--target=approval",
        "--model=ridge",
        "--folds=3",
        f"--space={space}",
        f"--output={tmp_path}",
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["model"]["params"] == {"alpha": 0.5}
    assert report["metrics"]["r2"] > 0.8  # shuffled folds: interpolating a smooth series
    figures = report_module.train_figures(report)
    titles = [f["layout"]["title"]["text"] for f in figures]
    assert titles[:2] == [
        "Predicted against actual (held-out rows)",
        "Residuals (predicted - actual)",
    ]


def test_train_multiclass_jsonl(runner: CliRunner, data_dir: Path, tmp_path: Path) -> None:
    result = _invoke(
        runner,
        "train",
        data_dir / "iris.jsonl",
        "--target=species",
        "--model=logreg",
        "--search=none",
        "--folds=3",
        f"--output={tmp_path}",
        "--no-learning-curve",
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["classes"] == ["setosa", "versicolor", "virginica"]
    m = report["metrics"]
    assert m["f1_average"] == "macro" and m["accuracy"] > 0.85 and m["roc_auc"] > 0.95
    assert len(report["curves"]["roc"]) == 3 and report["learning_curve"] is None


@pytest.mark.parametrize("learner", ["logreg", "naive-bayes", "tree"])
def test_evaluate_matches_river_progressive_val_score(
    runner: CliRunner, data_dir: Path, tmp_path: Path, learner: str
) -> None:
    result = _invoke(
        runner,
        "evaluate",
        data_dir / "phishing.csv",
        "--target=is_phishing",
        f"--model={learner}",
        f"--output={tmp_path}",
        "--html",
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    reference = metrics.Accuracy() + metrics.F1() + metrics.ROCAUC() + metrics.LogLoss()
    model = build_learner(learner, "classification", seed=0)
    evaluate.progressive_val_score(datasets.Phishing(), model, reference)
    names = ["accuracy", "f1", "roc_auc", "log_loss"]
    assert [report["metrics"][n] for n in names] == [m.get() for m in reference]  # exactly
    assert report["metrics"]["accuracy"] > 0.85
    assert report["us_per_event"] > 0 and report["curve"]["step"][-1] == 1250
    assert (tmp_path / "report.html").read_text().count("<h2>") >= 2


def test_evaluate_regression_matches_river(
    runner: CliRunner, data_dir: Path, tmp_path: Path
) -> None:
    result = _invoke(
        runner,
        "evaluate",
        data_dir / "trump.csv",
        "--target=approval",
        "--model=tree",
        f"--output={tmp_path}",
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    reference = metrics.MAE() + metrics.RMSE() + metrics.R2()
    model = build_learner("tree", "regression", seed=0)
    evaluate.progressive_val_score(datasets.TrumpApproval(), model, reference)
    assert [report["metrics"][n] for n in ("mae", "rmse", "r2")] == [m.get() for m in reference]
    assert report["metrics"]["mae"] < 1.0


def test_progressive_multiclass_and_params(data_dir: Path) -> None:
    dataset = prepare_dataset(read_table(data_dir / "iris.jsonl"), "species")
    report = progressive_validate(dataset, "logreg")
    assert list(report["metrics"]) == ["accuracy", "f1_macro", "log_loss"]
    assert report["positive_label"] is None and report["metrics"]["accuracy"] > 0.6
    arf = progressive_validate(dataset, "arf", params={"n_models": 2}, seed=1)
    assert arf["learner"]["params"] == {"n_models": 2}
    again = progressive_validate(dataset, "arf", params={"n_models": 2}, seed=1)
    assert (again["metrics"], again["curve"]) == (arf["metrics"], arf["curve"])  # deterministic


def test_learner_registry() -> None:
    assert learner_names("classification") == ["arf", "logreg", "logreg-rbf", "naive-bayes", "tree"]
    with pytest.raises(LearnerError, match="unknown learner 'svm'"):
        build_learner("svm", "classification")
    with pytest.raises(LearnerError, match="unknown task"):
        learner_names("ranking")  # type: ignore[arg-type]


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_every_model_fits_and_takes_its_space(task: str, data_dir: Path) -> None:
    """Each registered model, with a draw from its default space, on 200 real rows."""
    from sklearn.model_selection import ParameterSampler

    name = "phishing.csv" if task == "classification" else "trump.csv"
    target = "is_phishing" if task == "classification" else "approval"
    dataset = prepare_dataset(read_table(data_dir / name).head(200), target)
    for model in model_names(task):  # type: ignore[arg-type]
        pipe = build_model(model, task, seed=0)  # type: ignore[arg-type]
        space = search_distributions(SEARCH_SPACES[task][model], pipe)  # type: ignore[index]
        (params,) = ParameterSampler(space, n_iter=1, random_state=0)
        params = {k: min(v, 20) if k.endswith("n_estimators") else v for k, v in params.items()}
        fitted = pipe.set_params(**params).fit(dataset.X, dataset.y)
        assert fitted.score(dataset.X, dataset.y) > 0.5, model


def test_space_errors() -> None:
    pipe = build_model("hgb", "regression")
    with pytest.raises(OfflineError, match="loguniform needs low > 0"):
        search_distributions({"learning_rate": {"loguniform": [0, 1]}}, pipe)
    with pytest.raises(OfflineError, match=r"randint needs \[low, high\]"):
        search_distributions({"max_iter": {"randint": [10]}}, pipe)
    with pytest.raises(OfflineError, match="empty list"):
        search_distributions({"max_iter": []}, pipe)
    dist = search_distributions({"max_iter": {"randint": [1, 3]}}, pipe)["model__max_iter"]
    assert set(dist.rvs(200, random_state=0)) == {1, 2, 3}
    only = merge_spaces(SEARCH_SPACES, {"regression": {"hgb": {"max_iter": [50]}}})
    assert only["regression"]["hgb"]["max_iter"] == [50]
    assert only["classification"]["hgb"]["max_iter"] == [100, 200, 300]
    with pytest.raises(OfflineError, match="must be an object"):
        merge_spaces(SEARCH_SPACES, {"hgb": [1]})


def test_dataset_checks(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "t": ["2024-01-03", "2024-01-01", "2024-01-02", "2024-01-04"],
            "a": [3.0, 1.0, 2.0, np.nan],
            "y": [1.5, None, 2.5, 4.0],
        }
    )
    ds = prepare_dataset(frame, "y", time_column="t")
    assert ds.task == "regression" and ds.dropped_rows == 1 and ds.features == ["a"]
    assert ds.y.tolist() == [2.5, 1.5, 4.0]  # sorted by time
    assert ds.rows()[2] == {}  # missing values are left out
    with pytest.raises(OfflineError, match="no time column 'when'"):
        prepare_dataset(frame, "y", time_column="when")
    with pytest.raises(OfflineError, match="neither numbers nor times"):
        prepare_dataset(frame.assign(t=["x", "y", "z", "w"]), "y", time_column="t")
    with pytest.raises(OfflineError, match="cannot also be a feature"):
        prepare_dataset(frame, "y", features=["a", "y"])
    with pytest.raises(OfflineError, match="no numeric feature columns"):
        prepare_dataset(frame[["t", "y"]], "y")
    widened = pd.read_csv(
        _write_csv(
            tmp_path / "w.csv",
            pd.DataFrame(
                {
                    "a": [1, 2, 3, 4, 5],
                    "b": [True, None, False, True, False],
                    "c": [1, 0, None, 1, 0],
                }
            ),
        )
    )
    assert prepare_dataset(widened, "b").classes == [False, True]
    assert prepare_dataset(widened, "c", features=["a"]).classes == [0, 1]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(OfflineError, match="cannot read as jsonl"):
        read_table(bad)
    with pytest.raises(OfflineError, match="unknown format"):
        read_table(bad, "parquet")


def _write_csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


def test_cli_errors_name_the_problem(runner: CliRunner, data_dir: Path, tmp_path: Path) -> None:
    phishing = data_dir / "phishing.csv"
    out = f"--output={tmp_path / 'out'}"
    _fails(
        _invoke(runner, "train", phishing, "--target=label", "--model=hgb", out),
        "no target column 'label'",
        "is_phishing",
    )
    _fails(
        _invoke(runner, "train", phishing, "--target=is_phishing", "--model=xgb", out),
        "unknown model 'xgb'",
        "hgb",
    )
    _fails(
        _invoke(runner, "train", phishing, "--target=is_phishing", "--model=ridge", out),
        "'ridge' is a regression model",
    )
    _fails(
        _invoke(runner, "evaluate", phishing, "--target=is_phishing", "--model=svm", out),
        "unknown learner 'svm'",
    )
    _fails(
        _invoke(runner, "evaluate", phishing, "--target=is_phishing", "--model=linear", out),
        "'linear' is a regression learner",
    )
    _fails(
        _invoke(runner, "train", tmp_path / "nope.csv", "--target=y", "--model=hgb"), "no such file"
    )

    small = pd.read_csv(phishing).head(12)
    text = _write_csv(tmp_path / "text.csv", small.assign(domain="example.com"))
    _fails(
        _invoke(
            runner,
            "train",
            text,
            "--target=is_phishing",
            "--model=logreg",
            "--features=https,domain",
            out,
        ),
        "feature column domain is not numeric",
    )
    constant = _write_csv(tmp_path / "constant.csv", small.assign(is_phishing=True))
    _fails(
        _invoke(runner, "train", constant, "--target=is_phishing", "--model=logreg", out),
        "target 'is_phishing' is constant",
    )
    _fails(
        _invoke(runner, "evaluate", constant, "--target=is_phishing", "--model=logreg", out),
        "is constant",
    )
    _fails(
        _invoke(
            runner,
            "train",
            _write_csv(tmp_path / "flat.csv", small.assign(score=2.5)),
            "--target=score",
            "--model=ridge",
            out,
        ),
        "target 'score' is constant",
    )
    few = _write_csv(tmp_path / "few.csv", small)
    _fails(
        _invoke(runner, "train", few, "--target=is_phishing", "--model=logreg", "--folds=5", out),
        "12 rows are too few for 5 folds",
        "need at least",
    )
    lonely = _write_csv(tmp_path / "lonely.csv", small.assign(is_phishing=["a"] * 11 + ["b"]))
    _fails(
        _invoke(runner, "train", lonely, "--target=is_phishing", "--model=logreg", out),
        "classes with a single row: 'b'",
    )

    _fails(
        _invoke(
            runner, "train", phishing, "--target=is_phishing", "--model=hgb", "--space={bad", out
        ),
        "--space",
        "not JSON",
        code=(2,),
    )
    _fails(
        _invoke(
            runner,
            "train",
            phishing,
            "--target=is_phishing",
            "--model=hgb",
            "--space=missing.json",
            out,
        ),
        "no such file",
        code=(2,),
    )
    _fails(
        _invoke(
            runner,
            "train",
            phishing,
            "--target=is_phishing",
            "--model=hgb",
            '--space={"hgb": {"depth": [1]}}',
            out,
        ),
        "HistGradientBoostingClassifier has no parameter 'depth'",
    )
    _fails(
        _invoke(
            runner,
            "train",
            phishing,
            "--target=is_phishing",
            "--model=hgb",
            "--scoring=accuracyy",
            out,
        ),
        "unknown scoring 'accuracyy'",
    )
    _fails(
        _invoke(
            runner, "evaluate", phishing, "--target=is_phishing", "--model=arf", "--params=[1]", out
        ),
        "must be a JSON object",
        code=(2,),
    )
    _fails(
        _invoke(
            runner,
            "evaluate",
            phishing,
            "--target=is_phishing",
            "--model=arf",
            '--params={"trees": 3}',
            out,
        ),
        "bad params",
    )
    _fails(
        _invoke(runner, "train", phishing, "--target=is_phishing", "--model=hgb", "--folds=1", out),
        "--folds",
        code=(2,),
    )


def test_regression_saved_model_and_io_errors(
    runner: CliRunner, data_dir: Path, tmp_path: Path
) -> None:
    trump = read_table(data_dir / "trump.csv").head(60)
    dataset = prepare_dataset(trump, "approval")
    options = TrainOptions("linear", folds=2, learning_curve=False, importance_repeats=1)
    saved = train(dataset, options).saved
    assert saved.describe()["task"] == "regression" and saved.predict_many([]) == []
    assert isinstance(saved.predict_one(dataset.rows()[0]), float)
    with pytest.raises(OfflineError, match="predicts numbers, not probabilities"):
        saved.predict_proba_one(dataset.rows()[0])
    empty = tmp_path / "empty.csv"
    empty.write_text("a,b\n")
    with pytest.raises(OfflineError, match="no rows"):
        read_table(empty)
    small = _write_csv(tmp_path / "small.csv", trump)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    _fails(
        _invoke(
            runner,
            "train",
            small,
            "--target=approval",
            "--model=linear",
            "--folds=2",
            f"--output={blocker / 'out'}",
        ),
        "blocker",
    )
