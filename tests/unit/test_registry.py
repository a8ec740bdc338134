"""The model registry without a broker: the lifecycle, the record rule, the artifact store."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from click.testing import CliRunner
from river import datasets, linear_model, preprocessing

from streamlearn.cli import main
from streamlearn.models import envelope
from streamlearn.models.envelope import incompatible_versions, major_version, seal
from streamlearn.models.learners import build_learner
from streamlearn.registry import (
    Artifact,
    ArtifactMissingError,
    ArtifactRefusedError,
    ArtifactStore,
    ModelEntry,
    ModelNotFoundError,
    RegistryInputError,
    TransitionError,
)
from streamlearn.registry.state import RegistryState, encode
from streamlearn.web.params import BadRequest
from streamlearn.web.registry_api import check_token

KEY = bytes(range(32))
ART = Artifact("ab" * 32, 10, "river")


def entry_with(n: int) -> ModelEntry:
    entry = ModelEntry("m")
    for i in range(n):
        entry.add(ART, at=f"t{i}", created_by="ana")
    return entry


# --- lifecycle ---------------------------------------------------------------------------


def test_versions_count_from_one_and_start_in_dev() -> None:
    entry = entry_with(3)
    assert sorted(entry.versions) == [1, 2, 3]
    v = entry.get(2)
    assert (v.name, v.stage, v.created_at, v.created_by) == ("m", "dev", "t1", "ana")
    assert [(h.stage, h.why) for h in v.history] == [("dev", "registered")]


def test_get_by_number_stage_or_latest() -> None:
    entry = entry_with(3)
    entry.promote(1, "staging", by="a", why="x", at="t")
    entry.promote(2, "staging", by="a", why="x", at="t")
    assert entry.get(1).version == entry.get("1").version == 1
    assert entry.get("latest").version == 3
    assert entry.get("staging").version == 2  # the newest in the stage
    assert entry.get("dev").version == 3
    with pytest.raises(ModelNotFoundError, match="m has no version in production"):
        entry.get("production")
    with pytest.raises(ModelNotFoundError, match=r"m has no version 9 \(versions: 1, 2, 3\)"):
        entry.get(9)
    with pytest.raises(RegistryInputError, match="not a number, 'latest' or a stage"):
        entry.get("best")
    with pytest.raises(ModelNotFoundError, match="m has no versions"):
        ModelEntry("m").get("latest")


def test_one_production_version_per_name() -> None:
    entry = entry_with(3)
    entry.promote(1, "production", by="ana", why="first", at="t1")
    entry.promote(2, "staging", by="ana", why="ci", at="t2")
    entry.promote(2, "production", by="bob", why="better", at="t3")
    assert [v.version for v in entry.versions.values() if v.stage == "production"] == [2]
    replaced = entry.get(1).history[-1]
    assert (replaced.stage, replaced.by, replaced.why, replaced.at) == (
        "archived",
        "bob",
        "replaced by v2",
        "t3",
    )
    assert [h.stage for h in entry.get(2).history] == ["dev", "staging", "production"]
    assert entry.production_lineage == [1, 2]


def test_rollback_walks_back_the_production_lineage() -> None:
    entry = entry_with(3)
    with pytest.raises(TransitionError, match="no production version to roll back"):
        entry.rollback(by="a", why="x", at="t")
    for n in (1, 2, 3):
        entry.promote(n, "production", by="a", why=f"p{n}", at=f"t{n}")
    assert entry.rollback(by="ops", why="bad", at="t4").version == 2
    assert entry.get(3).stage == "archived"
    assert entry.get(3).history[-1].why == "rolled back to v2: bad"
    assert entry.get(2).history[-1].why == "rollback from v3: bad"
    assert entry.rollback(by="ops", why="worse", at="t5").version == 1
    with pytest.raises(TransitionError, match="no earlier production version"):
        entry.rollback(by="ops", why="again", at="t6")
    assert entry.get("production").version == 1


def test_archive_and_restore() -> None:
    entry = entry_with(2)
    entry.promote(1, "production", by="a", why="x", at="t")
    entry.promote(2, "production", by="a", why="x", at="t")
    entry.archive(2, by="a", why="broken", at="t")  # production leaves the lineage
    assert entry.production() is None and entry.production_lineage == [1]
    with pytest.raises(TransitionError, match="no production version"):
        entry.rollback(by="a", why="x", at="t")
    with pytest.raises(TransitionError, match="v2 of m is already archived"):
        entry.archive(2, by="a", why="", at="t")
    entry.promote(1, "production", by="a", why="restore", at="t")  # archived -> production
    assert entry.get("production").version == 1 and entry.production_lineage == [1]
    assert entry.get(2).history[-1].why == "broken"


@pytest.mark.parametrize(
    ("start", "to", "error", "message"),
    [
        ("dev", "dev", TransitionError, "cannot promote to dev"),
        ("dev", "archived", TransitionError, "use archive"),
        ("dev", "gold", RegistryInputError, "unknown stage 'gold'"),
        ("staging", "staging", TransitionError, "already in staging"),
        ("production", "production", TransitionError, "already in production"),
        ("production", "staging", TransitionError, "cannot move it down to staging"),
    ],
)
def test_invalid_transitions_are_refused(start: str, to: str, error: type, message: str) -> None:
    entry = entry_with(1)
    if start != "dev":
        entry.promote(1, start, by="a", why="x", at="t")
    before = entry.to_dict()
    with pytest.raises(error, match=message):
        entry.promote(1, to, by="a", why="x", at="t")
    assert entry.to_dict() == before  # nothing changed


def test_entry_round_trips_through_its_record() -> None:
    entry = entry_with(2)
    entry.promote(2, "production", by="a", why="x", at="t")
    entry.get(1).metrics["auc"] = 0.9
    entry.revision = 7
    key, value = encode(entry)
    assert key == b"m"
    again = ModelEntry.from_dict(orjson.loads(value))
    assert again == entry


def test_names_are_checked() -> None:
    from streamlearn.registry.entry import check_name

    for bad in ("", "../x", "a/b", "x" * 65, "-x"):
        with pytest.raises(RegistryInputError, match="invalid model name"):
            check_name(bad)


# --- the record rule -----------------------------------------------------------------------


def test_a_record_from_a_stale_base_is_ignored_and_garbage_is_skipped() -> None:
    state = RegistryState()
    first = entry_with(1)
    first.revision = 1
    assert state.apply(*encode(first), offset=0)
    stale = entry_with(2)
    stale.revision = 1  # written from revision 0 by a racing writer
    assert not state.apply(*encode(stale), offset=1)
    assert len(state.entries["m"].versions) == 1
    assert (state.accepted["m"], state.last["m"]) == (0, 1)
    newer = entry_with(2)
    newer.revision = 2
    assert state.apply(*encode(newer), offset=2)
    assert not state.apply(b"m", b"not json", offset=3)
    assert not state.apply(b"other", encode(newer)[1], offset=4)  # key != name
    assert len(state.entries["m"].versions) == 2
    assert state.apply(b"m", None, offset=5)  # tombstone
    assert "m" not in state.entries


# --- the artifact store ----------------------------------------------------------------


class Evil:
    """Unpickling this would create ``marker``: it must be refused before that."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "store", KEY)


def river_pipeline() -> Any:
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    for x, y in list(datasets.Phishing())[:100]:
        model.learn_one(x, y)
    return model


def test_round_trip_of_river_and_sklearn_models(store: ArtifactStore) -> None:
    from sklearn.ensemble import RandomForestClassifier

    from streamlearn.models.offline import SavedModel

    forest = RandomForestClassifier(n_estimators=5, random_state=0)
    forest.fit(np.array([[0.0, 1.0], [1.0, 0.0]] * 5), [0, 1] * 5)
    saved = SavedModel(forest, ["a", "b"], "y", "classification", [0, 1], model="rf")
    river = river_pipeline()
    x = next(iter(datasets.Phishing()))[0]
    for obj, kind in [(river, "river"), (saved, "sklearn"), (forest, "sklearn")]:
        art, header, _ = store.put(store.seal(obj))
        assert art.kind == kind and header["kind"] == kind
        assert (store.root / art.sha256).stat().st_size == art.size_bytes
        loaded = store.load(art)
        assert type(loaded) is type(obj)
    assert store.load(store.put(store.seal(river))[0]).predict_proba_one(x) == pytest.approx(
        river.predict_proba_one(x)
    )
    # every streamlearn learner loads through the restricted unpickler
    for name, task in [("logreg-rbf", "classification"), ("arf", "classification")]:
        learner = build_learner(name, task)
        learner.learn_one(x, True)
        assert type(store.load(store.put(store.seal(learner))[0])) is type(learner)


def test_an_altered_byte_is_refused(store: ArtifactStore) -> None:
    art, _, _ = store.put(store.seal({"w": 1.0}))
    path = store.root / art.sha256
    blob = bytearray(path.read_bytes())
    blob[-2] ^= 1
    path.write_bytes(bytes(blob))
    with pytest.raises(ArtifactRefusedError, match=r"tampered with: .* has sha256"):
        store.load(art)
    with pytest.raises(ArtifactRefusedError, match="signature mismatch"):
        store.put(bytes(blob))


def test_unsigned_and_malicious_pickles_are_refused_without_running(
    store: ArtifactStore, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    evil = pickle.dumps(Evil(marker))
    with pytest.raises(ArtifactRefusedError, match="unsigned"):
        store.put(evil)
    with pytest.raises(ArtifactRefusedError, match="signature mismatch"):
        store.put(seal(Evil(marker), b"attacker key 0123456789abcdef000"))
    # even signed with the right key: exec is not a class a model may name
    with pytest.raises(ArtifactRefusedError, match=r"refused to load builtins\.exec"):
        store.put(seal(Evil(marker), KEY))
    assert not marker.exists()
    assert not store.root.exists() or not list(store.root.iterdir())  # nothing stored


@pytest.mark.parametrize("library", ["river", "scikit-learn"])
def test_another_major_version_is_refused_without_unpickling(
    store: ArtifactStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, library: str
) -> None:
    marker = tmp_path / "pwned"
    installed = envelope._VERSIONS[library]
    other = "9.0.0" if not installed.startswith("9.") else "8.0.0"
    monkeypatch.setattr(envelope, "_VERSIONS", {**envelope._VERSIONS, library: other})
    blob = seal(Evil(marker), KEY)
    monkeypatch.undo()
    with pytest.raises(ArtifactRefusedError, match=f"{library} {other} \\(installed: {installed}"):
        store.put(blob)
    assert not marker.exists()


def test_major_versions() -> None:
    assert major_version("1.5.2") == "1" and major_version("0.26.1") == "0.26"
    now = envelope._VERSIONS
    assert incompatible_versions({"versions": dict(now)}) == {}
    assert incompatible_versions({"versions": {"river": "0.1.0"}}) == {
        "river": ("0.1.0", now["river"])
    }
    assert incompatible_versions({"versions": {"river": "absent"}}) == {}
    assert incompatible_versions({}) == {}


def test_a_missing_artifact_names_the_store(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactMissingError, match="registry_dir must be shared storage"):
        store.load(Artifact("cd" * 32, 1, "pickle"))
    with pytest.raises(ArtifactRefusedError, match="not a sha256"):
        store.load(Artifact("../../etc/passwd", 1, "pickle"))


def test_artifacts_are_written_atomically_and_content_addressed(store: ArtifactStore) -> None:
    blob = store.seal([1, 2, 3])
    first, _, _ = store.put(blob)
    second, _, _ = store.put(blob)
    assert first == second
    assert [p.name for p in store.root.iterdir()] == [first.sha256]  # no temp files left
    assert oct(os.stat(store.root / first.sha256).st_mode)[-3:] in ("644", "664", "600")


# --- the HTTP token and the command line (no broker needed) ---------------------------------


def test_token_check() -> None:
    check_token("Bearer t0ken", "t0ken")
    check_token("bearer t0ken", "t0ken")
    for header, token, message in [
        (None, "t0ken", "missing Authorization"),
        ("Basic dXNlcg==", "t0ken", "missing Authorization"),
        ("Bearer nope", "t0ken", "invalid API token"),
        ("Bearer t0ken", None, "no api_token is configured"),
    ]:
        with pytest.raises(BadRequest, match=message) as caught:
            check_token(header, token)
        assert caught.value.status == 401


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in list(os.environ):
        if name.startswith("STREAMLEARN_"):
            monkeypatch.delenv(name)
    return CliRunner()


@pytest.mark.parametrize(
    "command", ["list", "show", "register", "promote", "archive", "rollback", None]
)
def test_models_commands_have_help(runner: CliRunner, command: str | None) -> None:
    args = ["models", command, "--help"] if command else ["models", "--help"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_models_arguments_are_checked_before_connecting(runner: CliRunner, tmp_path: Path) -> None:
    model = tmp_path / "m.sle"
    model.write_bytes(b"x")
    result = runner.invoke(main, ["models", "register", "m", str(model), "--metrics", "[1]"])
    assert result.exit_code == 2 and "must be a JSON object" in result.output
    result = runner.invoke(main, ["models", "register", "m", str(model), "--params", "{x"])
    assert result.exit_code == 2 and "not JSON" in result.output
    result = runner.invoke(main, ["models", "promote", "m", "1", "--to", "archived", "--why", "x"])
    assert result.exit_code == 2 and "streamlearn models archive" in result.output
    result = runner.invoke(main, ["models", "promote", "m", "one", "--to", "staging", "--why", "x"])
    assert result.exit_code == 2 and "not a valid integer" in result.output
    result = runner.invoke(main, ["models", "rollback", "m"])
    assert result.exit_code == 2 and "--why" in result.output


def test_the_kind_given_is_recorded(store: ArtifactStore) -> None:
    assert store.put(store.seal({"state": 1}, kind="river"))[0].kind == "river"
    assert store.put(store.seal({"state": 1}))[0].kind == "pickle"
    with pytest.raises(RegistryInputError, match="unknown kind 'onnx'"):
        store.seal({}, kind="onnx")
