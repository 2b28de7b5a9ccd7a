"""The request bodies of outputs and exports as the OpenAPI document shows them, derived
from the definition models themselves (so a new key appears here by itself).

The routes take the body as a JSON object and validate it with those models, so each
problem keeps the message and the pointer a definitions file gives; these schemas only
describe it (`openapi_extra`).
"""

from __future__ import annotations

from typing import Any

from exporter_pipeline.api.output_rules import OUTPUT_MODELS
from exporter_pipeline.exports.validation import AnyExport
from exporter_pipeline.names import NAME_PATTERN

NAME_SCHEMA = {"type": "string", "pattern": NAME_PATTERN}


def inline_refs(schema: Any, definitions: dict[str, Any]) -> Any:
    """`schema` with every `{"$ref": "#/$defs/X"}` replaced by X itself: the document's
    components do not hold a model's own `$defs` (none of these models is recursive)."""
    if isinstance(schema, list):
        return [inline_refs(item, definitions) for item in schema]
    if not isinstance(schema, dict):
        return schema
    reference = schema.get("$ref")
    if isinstance(reference, str) and reference.startswith("#/$defs/"):
        return inline_refs(definitions[reference.removeprefix("#/$defs/")], definitions)
    return {k: inline_refs(v, definitions) for k, v in schema.items() if k != "$defs"}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"content": {"application/json": {"schema": schema}}}}


def output_request_schema() -> dict[str, Any]:
    choices = []
    for kind, model in OUTPUT_MODELS.items():
        schema = model.model_json_schema()
        properties = {
            k: v
            for k, v in schema["properties"].items()
            if k != "tenant" and not k.endswith("_env")
        }
        credentials = {
            "type": "object",
            "description": "Write-only; stored encrypted.",
            "properties": {name: {"type": "string"} for name in model.credentials()},
            "additionalProperties": False,
        }
        choices.append(
            {
                "title": f"{kind} output",
                "type": "object",
                "properties": {
                    "name": NAME_SCHEMA,
                    **properties,
                    "credentials": credentials,
                },
                "required": ["name", *schema.get("required", [])],
                "additionalProperties": False,
            }
        )
    return {"oneOf": choices, "discriminator": {"propertyName": "type"}}


def webhook_request_schema(model: dict[str, Any]) -> dict[str, Any]:
    """A webhook as the API takes it: no `secret_env`; a write-only `secret`."""
    properties = {k: v for k, v in model["properties"].items() if k != "secret_env"}
    properties["secret_stored"] = {
        "type": "boolean",
        "const": True,
        "default": True,
        "description": "The service holds the secret (always so through the API).",
    }
    properties["secret"] = {
        "type": "string",
        "pattern": "^whsec_",
        "writeOnly": True,
        "description": "whsec_<base64>, stored encrypted and never returned; omitted, the "
        "service makes one and tells it once, in the answer's meta.webhook_secret.",
    }
    return {**model, "properties": properties}


def export_request_schema() -> dict[str, Any]:
    schema = AnyExport.model_json_schema()
    definitions = schema.get("$defs", {})
    if "WebhookDelivery" in definitions:
        definitions["WebhookDelivery"] = webhook_request_schema(definitions["WebhookDelivery"])
    inlined: dict[str, Any] = inline_refs(schema, schema.get("$defs", {}))
    inlined["title"] = "Export definition (the YAML keys; tenant implied)"
    # The name rule (names.py) as a pattern: clients and generators see it, not only
    # the 422 that follows a name breaking it.
    properties = inlined["properties"]
    for key in ("name", "tenant"):
        properties[key] = {**properties[key], **NAME_SCHEMA}
    properties["output"]["properties"]["name"] |= NAME_SCHEMA
    inlined["required"] = [k for k in inlined.get("required", []) if k != "tenant"]
    return inlined


def export_replace_schema() -> dict[str, Any]:
    """PUT's body: the whole definition, its name the path's (so it may be left out)."""
    schema = export_request_schema()
    schema["required"] = [k for k in schema["required"] if k != "name"]
    return schema


OUTPUT_REQUEST = _body(output_request_schema())
EXPORT_REQUEST = _body(export_request_schema())
EXPORT_REPLACE_REQUEST = _body(export_replace_schema())
