"""An export definition validated as a pydantic discriminated union on `dataset`.

The registry (`catalog.DATASETS`) gives each data set's model. A body that fits no one
model (no valid `dataset`, or keys of another data set) is checked by `AnyExport`, which
holds every key of every data set, so each problem keeps the message it always had:
`interval does not apply to dataset raw`, not `unknown field 'interval'`.
"""

from __future__ import annotations

import functools
import operator
from typing import Annotated, Any, Literal, cast

from pydantic import (
    Discriminator,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    create_model,
    model_validator,
)

from exporter_pipeline.exports.catalog import ALL_DATASET_KEYS, DATASETS
from exporter_pipeline.exports.definition import ExportDefinition, ExportFields
from exporter_pipeline.exports.definition_parts import FieldErrors, pointer, shown

# The tag of `AnyExport`; no data set has this name (names are [a-z0-9_]+).
ANY = "*"


class _AnyExportRules(ExportFields):
    @model_validator(mode="wrap")
    @classmethod
    def _as_its_dataset(
        cls, data: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Any:
        # Every key's own check first: a wrong key fails here, as it always did.
        loose = handler(data)
        dataset = DATASETS[loose.dataset]
        foreign = [k for k in ALL_DATASET_KEYS if k in loose.model_fields_set]
        foreign = [k for k in foreign if k not in dataset.keys]
        if not foreign:  # a body that fits its data set's model after all
            return dataset.model.model_validate(data, context=info.context)
        errors = [(k, f"{k} does not apply to dataset {loose.dataset}") for k in foreign]
        own = {k: v for k, v in data.items() if k not in foreign}
        try:
            dataset.model.model_validate(own, context=info.context)
        except ValidationError as error:
            for item in error.errors():
                inner = (item.get("ctx") or {}).get("error")
                if isinstance(inner, FieldErrors):
                    errors += inner.errors
        raise FieldErrors(errors)


def _any_export_model() -> type[ExportFields]:
    """Every key of every data set, in registry order, with `dataset` one of their names."""
    fields: dict[str, Any] = {
        "dataset": (Literal[tuple(DATASETS)], ...),  # type: ignore[valid-type]  # built from the registry
    }
    for dataset in DATASETS.values():
        for key in dataset.keys:
            info = dataset.model.model_fields[key]
            fields.setdefault(key, (info.annotation, info))
    return cast(type[ExportFields], create_model("AnyExport", __base__=_AnyExportRules, **fields))


AnyExport = _any_export_model()


# Per data set, the keys of the others: a body with one of them fits no one model.
_FOREIGN = {name: frozenset(ALL_DATASET_KEYS) - set(d.keys) for name, d in DATASETS.items()}


def _tag(body: Any) -> str:
    """The model a body is validated by: its data set's, or `AnyExport` to say why not."""
    if isinstance(body, dict):
        name = body.get("dataset")
        if isinstance(name, str) and name in DATASETS and _FOREIGN[name].isdisjoint(body):
            return name
    return ANY


# The registry's models, each under its data set's name, and AnyExport for the rest.
_CHOICES = [Annotated[d.model, Tag(name)] for name, d in DATASETS.items()]
_UNION = functools.reduce(operator.or_, [*_CHOICES, Annotated[AnyExport, Tag(ANY)]])
EXPORT_ADAPTER: TypeAdapter[ExportDefinition] = TypeAdapter(
    Annotated[_UNION, Discriminator(_tag)]  # type: ignore[arg-type]  # built from the registry
)


def validate_export(body: Any, context: dict[str, Any] | None = None) -> ExportDefinition:
    """The export a body defines, as its data set's model; a ValidationError if invalid
    (`describe_errors(error, prefix, union_at=0)` words it)."""
    return EXPORT_ADAPTER.validate_python(body, context=context)


def describe_errors(
    error: ValidationError, prefix: tuple[Any, ...], union_at: int | None = None
) -> list[tuple[str, str]]:
    """Each problem as (JSON pointer, message). `union_at`: where in pydantic's location
    the discriminated union puts its tag, which is no part of the document."""
    found = []
    for item in error.errors():
        context = item.get("ctx", {})
        location = tuple(item["loc"])
        if union_at is not None:
            location = location[:union_at] + location[union_at + 1 :]
        inner = context.get("error") if context else None
        if isinstance(inner, FieldErrors):
            found += [(pointer((*prefix, *location, f)), m) for f, m in inner.errors]
            continue
        location = tuple(p for p in location if not str(p).startswith("function-"))
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = f"unknown field {shown(location[-1])}"
        elif item["type"] == "missing":
            message = f"field {location[-1]!r} is required"
        found.append((pointer((*prefix, *location)), message))
    return found
