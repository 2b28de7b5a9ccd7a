"""The export definitions file (DESIGN.md, Export definitions file): its top level as one
model, each output and export checked on its own, and the rules across them.

`load_definitions_file` collects every problem at once. Each message names the file,
the export (by name, or by position when it has none) and the field as a JSON pointer
into the document, like seed 003's `source.pointer`:

    exports.yaml: export 'acme_daily' (/exports/0/interval): interval 2m is not one of ...
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from exporter_pipeline.destinations.outputs import Output
from exporter_pipeline.errors import DefinitionError
from exporter_pipeline.exports.definition import ExportDefinition
from exporter_pipeline.exports.definition_parts import pointer, shown
from exporter_pipeline.exports.ownership import (
    Placed,
    location_conflicts,
    output_root,
    segments,
)
from exporter_pipeline.exports.validation import describe_errors, validate_export
from exporter_pipeline.names import (
    RESERVED_EXPORT_NAMES,
    dagster_name,
    dagster_name_clashes,
    export_job_name,
    name_problem,
)

TOP_LEVEL_MESSAGES = {
    "model_type": "the top level must be a mapping with outputs/exports",
    "dict_type": "field 'outputs' must be a mapping of output names",
    "list_type": "field 'exports' must be a list of export definitions",
}


class DefinitionsDocument(BaseModel):
    """The file's top level as written. Each entry stays as written here and is checked
    on its own, so one bad entry neither hides another nor (leniently) drops the file."""

    model_config = ConfigDict(extra="forbid")

    outputs: dict[Any, Any] = Field(default_factory=dict, strict=True)
    exports: list[Any] = Field(default_factory=list, strict=True)

    @field_validator("outputs", "exports", mode="before")
    @classmethod
    def _empty(cls, value: Any, info: Any) -> Any:
        # `outputs:` with nothing after it (or any empty value) declares nothing.
        return value or ({} if info.field_name == "outputs" else [])

    @classmethod
    def read(cls, document: Any, where: str) -> tuple[DefinitionsDocument, list[str]]:
        """The document, with what is wrong with its top level (raised when it is unusable)."""
        try:
            return cls.model_validate({} if document is None else document), []
        except ValidationError as error:
            errors = error.errors()
        if any(e["type"] == "model_type" for e in errors):
            raise DefinitionError(f"{where}: {TOP_LEVEL_MESSAGES['model_type']}") from None
        # Unknown keys in the order written (pydantic reports a key that is no string apart).
        problems = [
            f"{where}: unknown top-level key {shown(key)} (expected outputs, exports)"
            for key in document
            if key not in cls.model_fields
        ]
        wrong = {e["loc"][0]: e["type"] for e in errors if e["type"] in TOP_LEVEL_MESSAGES}
        problems += [
            f"{where}: {TOP_LEVEL_MESSAGES[wrong[k]]}" for k in cls.model_fields if k in wrong
        ]
        kept = {k: document[k] for k in cls.model_fields if k in document and k not in wrong}
        return cls.model_validate(kept), problems


class RejectedExport(BaseModel):
    """An export a lenient load left out, with every problem found in it."""

    index: int
    name: str | None
    problems: list[str]


class DefinitionsFile(BaseModel):
    path: Path
    outputs: dict[str, Output]
    exports: list[ExportDefinition]
    # Lenient loads only (the code location): the exports and outputs left out, and why.
    rejected: list[RejectedExport] = Field(default_factory=list)
    rejected_outputs: list[str] = Field(default_factory=list)

    def export(self, name: str) -> ExportDefinition:
        return next(e for e in self.exports if e.name == name)

    @property
    def rejected_problems(self) -> list[str]:
        """Every problem of the exports left out, in order."""
        return [problem for rejected in self.rejected for problem in rejected.problems]

    def of_tenants(self, holds: Callable[[str], bool], *, with_unowned: bool) -> DefinitionsFile:
        """Only the exports and outputs of the tenants `holds` accepts (a shard's), plus the
        operator's outputs; the rejected entries, which may have no tenant, only when
        `with_unowned`, so that one location, not every shard, shows them."""
        return self.model_copy(
            update={
                "exports": [e for e in self.exports if holds(e.tenant)],
                "outputs": {
                    name: output
                    for name, output in self.outputs.items()
                    if output.tenant is None or holds(output.tenant)
                },
                "rejected": self.rejected if with_unowned else [],
                "rejected_outputs": self.rejected_outputs if with_unowned else [],
            }
        )


class _OutputHolder(BaseModel):
    output: Output


def _output_problems(where: str, name: str, body: Any, error: ValidationError) -> list[str]:
    problems = []
    tag = body.get("type") if isinstance(body, dict) else None
    for at, message in describe_errors(error, ()):
        # pydantic puts the union's tag in the location: /output/s3/bucket.
        branch = pointer(("output", tag))
        if isinstance(tag, str) and (at + "/").startswith(branch + "/"):
            at = "/output" + at[len(branch) :]
        at = at.replace("/output", pointer(("outputs", name)), 1)
        problems.append(f"{where}: output {shown(name)} ({at}): {message}")
    return problems


def read_outputs(where: str, raw_outputs: dict[Any, Any]) -> tuple[dict[str, Output], list[str]]:
    """The valid outputs by name, and every problem of the others."""
    outputs: dict[str, Output] = {}
    problems: list[str] = []
    for name, body in raw_outputs.items():
        label = f"{where}: output {shown(name)} ({pointer(('outputs', name))})"
        if not isinstance(name, str):
            problems.append(
                f"{label}: output name must be a string (got {type(name).__name__} {name!r})"
            )
            continue
        problem = name_problem(name)
        if problem:
            problems.append(f"{label}: output name {problem}")
            continue
        try:
            outputs[name] = _OutputHolder.model_validate({"output": body}).output
        except ValidationError as error:
            problems += _output_problems(where, name, body, error)
    # `a-b` and `a_b` would both be the resource `output_a_b` (names).
    for name, earlier in dagster_name_clashes(outputs):
        problems.append(
            f"{where}: output {name!r} ({pointer(('outputs', name))}): output name {name!r} "
            f"and output {earlier!r} both become the Dagster name {dagster_name(name)!r}; "
            "rename one"
        )
        del outputs[name]
    return outputs, problems


class _Exports:
    """The exports of one file: each validated on its own, then the rules across them."""

    def __init__(self, where: str, raw_outputs: dict[Any, Any], outputs: dict[str, Output]):
        self.where = where
        self.raw_outputs = raw_outputs
        self.outputs = outputs
        self.valid: dict[int, ExportDefinition] = {}
        self.found: dict[int, list[str]] = {}
        self.labels: dict[int, str] = {}
        self.seen: dict[str, int] = {}
        self.jobs: dict[str, tuple[str, int]] = {}

    def read(self, raw_exports: list[Any], now: datetime | None, positions: Sequence[int]) -> None:
        for index, body in zip(positions, raw_exports, strict=True):
            label = f"export #{index}"
            if isinstance(body, dict) and isinstance(body.get("name"), str):
                label = f"export {shown(body['name'])}"
            self.labels[index] = label
            self.found[index] = self._read_one(index, body, now)
        self._conflicts()

    def _read_one(self, index: int, body: Any, now: datetime | None) -> list[str]:
        at = f"{self.where}: {self.labels[index]} ({pointer(('exports', index))}"
        if not isinstance(body, dict):
            return [f"{at}): must be a mapping"]
        output_name = body["output"].get("name") if isinstance(body.get("output"), dict) else None
        unknown = []
        if isinstance(output_name, str) and output_name not in self.raw_outputs:
            known = ", ".join(sorted(str(n) for n in self.raw_outputs)) or "none declared"
            unknown = [f"{at}/output/name): unknown output {shown(output_name)} (outputs: {known})"]
        try:
            export = validate_export(body, context={"now": now})
        except ValidationError as error:
            found = describe_errors(error, ("exports", index), union_at=0)
            return [f"{self.where}: {self.labels[index]} ({p}): {m}" for p, m in found] + unknown
        problems = self._name_problems(at, index, export) + unknown
        output = self.outputs.get(export.output.name)
        if output is not None and not output.usable_by(export.tenant):
            problems.append(
                f"{at}/output/name): output {export.output.name!r} belongs to tenant "
                f"{output.tenant!r}; an export of tenant {export.tenant!r} may not use it"
            )
        self.valid[index] = export
        return problems

    def _name_problems(self, at: str, index: int, export: ExportDefinition) -> list[str]:
        problems = []
        if export.name in self.seen:
            problems.append(
                f"{at}/name): name {export.name!r} is already used by "
                f"/exports/{self.seen[export.name]}"
            )
        self.seen.setdefault(export.name, index)
        if dagster_name(export.name) in RESERVED_EXPORT_NAMES:
            problems.append(
                f"{at}/name): name {export.name!r} is reserved (the job "
                f"{export_job_name(export.name)} already exists)"
            )
        job = export_job_name(export.name)
        earlier_name, earlier_index = self.jobs.setdefault(job, (export.name, index))
        if earlier_name != export.name:
            problems.append(
                f"{at}/name): name {export.name!r} and export {earlier_name!r} "
                f"(/exports/{earlier_index}) both become the Dagster job {job!r}; rename one"
            )
        return problems

    def _conflicts(self) -> None:
        """Exports of different tenants must not write into one place (exports.ownership)."""
        placed = [
            Placed(
                i, e.tenant, (*output_root(self.outputs[e.output.name]), *segments(e.output.path))
            )
            for i, e in self.valid.items()
            if e.output.name in self.outputs
        ]
        for mine, theirs in location_conflicts(placed):
            ours, other = self.valid[mine.index], self.valid[theirs.index]
            self.found[mine.index].append(
                f"{self.where}: {self.labels[mine.index]} "
                f"({pointer(('exports', mine.index))}/output): "
                f"{_location(ours)} of export {ours.name!r} (tenant {ours.tenant!r}) "
                f"overlaps {_location(other)} of export {other.name!r} "
                f"(tenant {other.tenant!r}, /exports/{theirs.index}); exports of different "
                "tenants may not share an output location"
            )

    def rejected(self, raw_exports: list[Any], positions: Sequence[int]) -> list[RejectedExport]:
        """Lenient: an export loads when it has no problem and its output loaded."""
        rejected = []
        for index, body in zip(positions, raw_exports, strict=True):
            export = self.valid.get(index)
            mine = list(self.found.get(index, []))
            if export is not None and export.output.name not in self.outputs and not mine:
                mine.append(
                    f"{self.where}: {self.labels[index]} ({pointer(('exports', index))}"
                    f"/output/name): output {export.output.name!r} is not valid"
                )
            if mine:
                name = body.get("name") if isinstance(body, dict) else None
                valid_name = name if isinstance(name, str) and not name_problem(name) else None
                rejected.append(RejectedExport(index=index, name=valid_name, problems=mine))
        return rejected


def _location(export: ExportDefinition) -> str:
    return f"{export.output.name}:{export.output.path or '/'}"


def parse_definitions(
    document: Any,
    path: Path,
    now: datetime | None = None,
    *,
    lenient: bool = False,
    positions: Sequence[int] | None = None,
) -> DefinitionsFile:
    """Validate a parsed document; raise one DefinitionError listing every problem.

    `lenient` (the code location's load) raises only when the file as a whole is unusable;
    an output or export with a problem is left out and listed in `rejected`, so one bad
    entry does not take every tenant's jobs down with it. `positions`, when the document
    holds only some exports of a larger one (the store's load of one export with the
    entries its rules involve), are their positions there, in the same order: messages
    and `rejected` then point where the larger document's own validation points.
    """
    where = str(path)
    top, problems = DefinitionsDocument.read(document, where)
    if problems and lenient:
        raise DefinitionError("\n".join(problems))
    outputs, output_problems = read_outputs(where, top.outputs)
    problems += output_problems
    at = list(range(len(top.exports)) if positions is None else positions)
    exports = _Exports(where, top.outputs, outputs)
    exports.read(top.exports, now, at)
    if not lenient:
        for index in at:
            problems += exports.found[index]
        if problems:
            raise DefinitionError("\n".join(problems))
        return _assembled(path=path, outputs=outputs, exports=list(exports.valid.values()))
    rejected = exports.rejected(top.exports, at)
    left_out = {r.index for r in rejected}
    return _assembled(
        path=path,
        outputs=outputs,
        exports=[e for index, e in exports.valid.items() if index not in left_out],
        rejected=rejected,
        rejected_outputs=problems,
    )


def _assembled(**parts: Any) -> DefinitionsFile:
    """The file of parts validated one by one above. Built without validating them again:
    that would double the work of a load and check the rules against the wall clock
    instead of the `now` they were validated for."""
    return DefinitionsFile.model_construct(**{"rejected": [], "rejected_outputs": [], **parts})


class _Loader(yaml.SafeLoader):
    """YAML's safe loader, except that a timestamp it cannot build (`0000-01-01`) stays
    text, so the field's own rule reports it instead of a traceback."""

    def construct_yaml_timestamp(self, node: yaml.Node) -> Any:  # type: ignore[override]
        try:
            return super().construct_yaml_timestamp(node)  # type: ignore[arg-type]
        except (ValueError, OverflowError):
            return self.construct_scalar(node)  # type: ignore[arg-type]


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def read_definitions_text(path: Path, missing_ok: bool = False) -> str | None:
    """The file's text; a DefinitionError of one line naming the file when it cannot be
    read. None when it is missing and `missing_ok`."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        if missing_ok:
            return None
        raise DefinitionError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DefinitionError(f"{path}: is a directory, not a definitions file") from None
    except PermissionError:
        raise DefinitionError(f"{path}: cannot be read (permission denied)") from None
    except OSError as error:
        raise DefinitionError(f"{path}: cannot be read ({error.strerror or error})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DefinitionError(
            f"{path}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start})"
        ) from None


def read_definitions_document(path: Path, missing_ok: bool = True) -> tuple[bool, Any]:
    """(whether the file exists, its parsed YAML); a DefinitionError of one line naming
    the file when it cannot be read or parsed."""
    text = read_definitions_text(path, missing_ok)
    if text is None:
        return False, None
    try:
        return True, yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except yaml.YAMLError as error:
        raise DefinitionError(f"{path}: not valid YAML: {error}") from None
    except RecursionError:
        raise DefinitionError(f"{path}: not valid YAML: nested too deeply") from None


def load_definitions_file(
    path: Path, now: datetime | None = None, *, missing_ok: bool = True, lenient: bool = False
) -> DefinitionsFile:
    """The validated file; a missing (when `missing_ok`) or empty file declares nothing."""
    exists, document = read_definitions_document(path, missing_ok)
    if not exists:
        return DefinitionsFile(path=path, outputs={}, exports=[])
    return parse_definitions(document, path, now, lenient=lenient)
