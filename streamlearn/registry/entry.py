"""A model's versions and their lifecycle, as pure data (no Kafka, no files).

Stages: a version starts in ``dev``; :meth:`ModelEntry.promote` moves it up to
``staging`` or ``production`` (an ``archived`` version can be promoted again); there is
at most one ``production`` version per name, so promoting one archives the previous
(why: ``replaced by vN``); :meth:`ModelEntry.rollback` makes the version that was in
production before the current one production again and archives the current one;
:meth:`ModelEntry.archive` retires any version. Every change appends
``{stage, at, by, why}`` to the version's history.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from streamlearn.registry.errors import (
    ModelNotFoundError,
    RegistryInputError,
    TransitionError,
)

__all__ = [
    "PROMOTABLE",
    "STAGES",
    "Artifact",
    "ModelEntry",
    "ModelVersion",
    "StageChange",
    "check_name",
    "check_stage",
    "now_iso",
]

STAGES = ("dev", "staging", "production", "archived")
#: Stages a version can be promoted to.
PROMOTABLE = ("staging", "production")
_RANK = {"dev": 0, "staging": 1, "production": 2}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def now_iso() -> str:
    """The current UTC time as ISO-8601 with milliseconds and ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def check_name(name: str) -> str:
    """``name`` if it is a valid model name (as the ``model_name`` setting).

    >>> check_name("fraud.v2")
    'fraud.v2'
    >>> check_name("../etc")
    Traceback (most recent call last):
    ...
    streamlearn.registry.errors.RegistryInputError: invalid model name '../etc': 1-64 \
letters, digits, '.', '_' or '-', starting with a letter or digit
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise RegistryInputError(
            f"invalid model name {name!r}: 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_stage(stage: str) -> str:
    if stage not in STAGES:
        raise RegistryInputError(f"unknown stage {stage!r}; stages: {', '.join(STAGES)}")
    return stage


@dataclass(frozen=True)
class Artifact:
    """Where a version's signed blob is: ``sha256`` (its file name), size and content kind."""

    sha256: str
    size_bytes: int
    kind: str


@dataclass(frozen=True)
class StageChange:
    stage: str
    at: str
    by: str
    why: str


@dataclass
class ModelVersion:
    """One registered version of a model and its metadata."""

    name: str
    version: int
    artifact: Artifact
    created_at: str
    created_by: str = ""
    description: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    training_data: str | None = None
    library_versions: dict[str, str] = field(default_factory=dict)
    stage: str = "dev"
    history: list[StageChange] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ModelVersion:
        values = dict(doc)
        values["artifact"] = Artifact(**doc["artifact"])
        values["history"] = [StageChange(**h) for h in doc.get("history", [])]
        return cls(**values)

    def _move(self, stage: str, at: str, by: str, why: str) -> None:
        self.stage = stage
        self.history.append(StageChange(stage, at, by, why))


@dataclass
class ModelEntry:
    """Every version of one model name, the lifecycle rules, and a revision counter.

    Examples
    --------
    >>> entry = ModelEntry("fraud")
    >>> art = Artifact("ab" * 32, 100, "river")
    >>> v1 = entry.add(art, created_by="ana", at="t1")
    >>> v2 = entry.add(art, created_by="ana", at="t2")
    >>> entry.promote(1, "production", by="ana", why="first", at="t3").stage
    'production'
    >>> entry.promote(2, "production", by="ana", why="better", at="t4").version
    2
    >>> entry.get(1).stage, entry.get(1).history[-1].why
    ('archived', 'replaced by v2')
    >>> entry.rollback(by="bob", why="worse live", at="t5").version
    1
    >>> entry.get("production").version, entry.get(2).stage
    (1, 'archived')
    >>> entry.rollback(by="bob", why="again", at="t6")
    Traceback (most recent call last):
    ...
    streamlearn.registry.errors.TransitionError: fraud has no earlier production version \
to roll back to
    """

    name: str
    revision: int = 0
    updated_at: str = ""
    versions: dict[int, ModelVersion] = field(default_factory=dict)
    #: Versions promoted to production, in order; rollback goes back one step.
    production_lineage: list[int] = field(default_factory=list)

    # --- reading --------------------------------------------------------------------
    def get(self, ref: int | str = "latest") -> ModelVersion:
        """A version by number, by stage (its newest version in it), or ``latest``."""
        if isinstance(ref, str) and ref.isdigit():
            ref = int(ref)
        if isinstance(ref, int) and not isinstance(ref, bool):
            found = self.versions.get(ref)
            if found is None:
                raise ModelNotFoundError(
                    f"{self.name} has no version {ref} (versions: {self._numbers()})"
                )
            return found
        if ref == "latest":
            if not self.versions:
                raise ModelNotFoundError(f"{self.name} has no versions")
            return self.versions[max(self.versions)]
        if not isinstance(ref, str) or ref not in STAGES:
            raise RegistryInputError(
                f"version {ref!r} is not a number, 'latest' or a stage ({', '.join(STAGES)})"
            )
        in_stage = [n for n, v in self.versions.items() if v.stage == ref]
        if not in_stage:
            raise ModelNotFoundError(f"{self.name} has no version in {ref}")
        return self.versions[max(in_stage)]

    def production(self) -> ModelVersion | None:
        found = [v for v in self.versions.values() if v.stage == "production"]
        return found[0] if found else None

    def _numbers(self) -> str:
        return ", ".join(str(n) for n in sorted(self.versions)) or "none"

    # --- changing -------------------------------------------------------------------
    def add(
        self,
        artifact: Artifact,
        *,
        at: str,
        created_by: str = "",
        description: str = "",
        params: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        training_data: str | None = None,
        library_versions: dict[str, str] | None = None,
    ) -> ModelVersion:
        """Register the next version number, in ``dev``."""
        number = max(self.versions, default=0) + 1
        version = ModelVersion(
            name=self.name,
            version=number,
            artifact=artifact,
            created_at=at,
            created_by=created_by,
            description=description,
            params=dict(params or {}),
            metrics=dict(metrics or {}),
            training_data=training_data,
            library_versions=dict(library_versions or {}),
        )
        version._move("dev", at, created_by, "registered")
        self.versions[number] = version
        return version

    def promote(self, number: int, to: str, *, by: str, why: str, at: str) -> ModelVersion:
        """Move version ``number`` up to ``to`` (staging or production)."""
        check_stage(to)
        version = self.get(number)
        label = f"v{version.version} of {self.name}"
        if to not in PROMOTABLE:
            hint = "use archive to retire a version" if to == "archived" else "versions start there"
            raise TransitionError(
                f"cannot promote to {to} ({hint}); promote to staging or production"
            )
        if version.stage == to:
            raise TransitionError(f"{label} is already in {to}")
        if version.stage != "archived" and _RANK[version.stage] > _RANK[to]:
            raise TransitionError(
                f"{label} is in {version.stage}: promoting cannot move it down to {to} "
                "(archive it, or roll back)"
            )
        if to == "production":
            current = self.production()
            if current is not None:
                current._move("archived", at, by, f"replaced by v{version.version}")
            if self.production_lineage[-1:] != [version.version]:
                self.production_lineage.append(version.version)
        version._move(to, at, by, why)
        return version

    def archive(self, number: int, *, by: str, why: str, at: str) -> ModelVersion:
        """Retire version ``number``; a production version leaves the rollback lineage."""
        version = self.get(number)
        if version.stage == "archived":
            raise TransitionError(f"v{version.version} of {self.name} is already archived")
        if version.stage == "production" and self.production_lineage[-1:] == [version.version]:
            self.production_lineage.pop()
        version._move("archived", at, by, why or "archived")
        return version

    def rollback(self, *, by: str, why: str, at: str) -> ModelVersion:
        """Archive the production version; the one in production before it returns."""
        current = self.production()
        if current is None:
            raise TransitionError(f"{self.name} has no production version to roll back")
        lineage = self.production_lineage
        if len(lineage) < 2 or lineage[-1] != current.version:
            raise TransitionError(f"{self.name} has no earlier production version to roll back to")
        previous = self.versions[lineage[-2]]
        lineage.pop()
        current._move("archived", at, by, f"rolled back to v{previous.version}: {why}")
        previous._move("production", at, by, f"rollback from v{current.version}: {why}")
        return previous

    # --- the wire form --------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "revision": self.revision,
            "updated_at": self.updated_at,
            "production_lineage": list(self.production_lineage),
            "versions": [self.versions[n].to_dict() for n in sorted(self.versions)],
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ModelEntry:
        """Parse a record value; :class:`RegistryInputError` if it is not one."""
        try:
            versions = [ModelVersion.from_dict(v) for v in doc["versions"]]
            return cls(
                name=check_name(doc["name"]),
                revision=int(doc["revision"]),
                updated_at=str(doc.get("updated_at", "")),
                versions={v.version: v for v in versions},
                production_lineage=[int(n) for n in doc.get("production_lineage", [])],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RegistryInputError(f"not a registry record: {exc!r}") from None

    def summary(self) -> dict[str, Any]:
        """One line of ``models list``: counts and which version is where."""
        production = self.production()
        staging = sorted(n for n, v in self.versions.items() if v.stage == "staging")
        return {
            "name": self.name,
            "versions": len(self.versions),
            "latest": max(self.versions, default=None),
            "production": production.version if production else None,
            "staging": staging,
            "revision": self.revision,
            "updated_at": self.updated_at,
        }
