"""What a tenant may create as an output through the API, checked before the store sees
it. Pure: a request body in, the output's YAML keys and its credentials out, or every
problem as a JSON:API error pointing at its field.

Tenants are strangers, so beyond the output models' own rules (`destinations.outputs`):

* no `*_env` field: it would read a variable of the service's own environment; secrets
  come in `credentials` and are stored encrypted;
* a cloud output brings its own credentials: the service's (its environment, its
  instance role, Google's application default credentials) are never lent to a tenant;
* every address the output's client would connect to (an S3 or GCS `endpoint_url`, an
  Azure account URL or connection string's endpoint as the SDK parses it, a service
  account's `token_uri`) is resolved and must have public addresses only
  (`delivery.endpoints`; checked again whenever the output is opened);
* a `local` output lives under `EXPORTER_API_LOCAL_ROOT/<tenant>/`, its path relative.

A credential's value is never quoted in a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

from pydantic import ValidationError

from exporter_pipeline.api.errors import ApiError, ApiErrors
from exporter_pipeline.delivery.addresses import Resolver, system_resolver
from exporter_pipeline.delivery.endpoints import endpoint_problems
from exporter_pipeline.destinations.outputs import Output
from exporter_pipeline.exports.definition_parts import pointer, shown
from exporter_pipeline.exports.validation import describe_errors
from exporter_pipeline.names import name_problem
from exporter_pipeline.settings import Settings

# Each output model by its `type`, from the union the definitions file uses.
OUTPUT_MODELS = {
    get_args(model.model_fields["type"].annotation)[0]: model
    for model in get_args(get_args(Output)[0])
}
# Keys of the request that are not the output's YAML keys.
REQUEST_KEYS = ("name", "credentials")
# Per type, the sets of credentials of which one must be given in full.
REQUIRED_CREDENTIALS: dict[str, tuple[tuple[str, ...], ...]] = {
    "s3": (("access_key_id", "secret_access_key"),),
    "gcs": (("credentials_json",),),
    "azure": (("connection_string",), ("account_key", "account_url")),
}


@dataclass(frozen=True)
class OutputRequest:
    name: str
    body: dict[str, Any]  # the YAML keys, tenant included
    credentials: dict[str, str]


def invalid(at: str, detail: str, code: str = "invalid_field") -> ApiError:
    return ApiError(422, code, detail, title="Invalid request", pointer=at)


def read_output_request(
    raw: dict[str, Any], tenant: str, settings: Settings, resolve: Resolver = system_resolver
) -> OutputRequest:
    """The output a request creates for `tenant`; ApiErrors listing every problem. The
    names of its endpoints are resolved with `resolve` (`delivery.endpoints`)."""
    errors: list[ApiError] = []
    name = raw.get("name")
    if not isinstance(name, str):
        errors.append(invalid("/name", "field 'name' is required (a string)"))
    elif problem := name_problem(name):
        errors.append(invalid("/name", f"name {problem}"))
    if raw.get("tenant", tenant) != tenant:
        errors.append(invalid("/tenant", f"tenant must be omitted or {tenant!r} (the key's)"))
    errors += [
        invalid(pointer((key,)), env_refusal(key), "env_not_allowed")
        for key in raw
        if isinstance(key, str) and key.endswith("_env")
    ]
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in OUTPUT_MODELS:
        choices = ", ".join(OUTPUT_MODELS)
        given = shown(kind) if isinstance(kind, str | None) else f"a JSON {type(kind).__name__}"
        errors.append(invalid("/type", f"type must be one of {choices}, not {given}"))
        raise ApiErrors(errors)
    body = {k: v for k, v in raw.items() if k not in REQUEST_KEYS and not k.endswith("_env")}
    body["tenant"] = tenant
    if kind == "local" and "path" in body:
        body["path"], path_problem = confined_path(settings.api_local_root, tenant, body["path"])
        errors += [invalid("/path", path_problem)] if path_problem else []
    errors += _model_problems(str(kind), body)
    credentials, credential_errors = _credentials(str(kind), raw.get("credentials"), body)
    errors += credential_errors
    errors += _address_problems(body, credentials, settings.webhook_allow_private, resolve)
    if errors:
        raise ApiErrors(errors)
    return OutputRequest(str(name), body, credentials)


def env_refusal(key: str) -> str:
    return (
        f"{key} names an environment variable of the service, which the API does not "
        f"lend; give the value as credentials.{key.removesuffix('_env')}"
    )


def confined_path(root: str, tenant: str, given: Any) -> tuple[Any, str | None]:
    """(the path under the tenant's folder, or `given` with what is wrong with it)."""
    if not isinstance(given, str):
        return given, None  # the model says what a path must be
    if "\\" in given or "\x00" in given:
        return given, "path must use '/' between folders and hold no control characters"
    if given.startswith("/") or given.startswith("~") or ":" in given.split("/")[0]:
        return given, "path must be relative (it is placed in the tenant's own folder)"
    parts = [part for part in given.split("/") if part not in ("", ".")]
    if ".." in parts:
        return given, "path must not contain '..' segments"
    return "/".join([root.rstrip("/") or "/", tenant, *parts]), None


def shown_settings(kind: str, settings: dict[str, Any], root: str, tenant: str) -> dict[str, Any]:
    """An output's settings as its tenant sees them: a confined local path relative."""
    if kind != "local" or not isinstance(settings.get("path"), str):
        return settings
    folder = "/".join([root.rstrip("/") or "/", tenant])
    path: str = settings["path"]
    if path == folder or path.startswith(folder + "/"):
        return {**settings, "path": path[len(folder) + 1 :] or "."}
    return settings


def _model_problems(kind: str, body: dict[str, Any]) -> list[ApiError]:
    try:
        OUTPUT_MODELS[kind].model_validate(body)
    except ValidationError as error:
        return [invalid(at, message) for at, message in describe_errors(error, ())]
    return []


def _credentials(
    kind: str, given: Any, body: dict[str, Any]
) -> tuple[dict[str, str], list[ApiError]]:
    if given is None:
        given = {}
    if not isinstance(given, dict):
        return {}, [invalid("/credentials", "credentials must be an object of names to values")]
    allowed = OUTPUT_MODELS[kind].credentials()
    errors = []
    for key, value in given.items():
        at = pointer(("credentials", key))
        if key not in allowed:
            choices = ", ".join(allowed) or "none"
            errors.append(
                invalid(at, f"a {kind} output has no credential {shown(key)} ({choices})")
            )
        elif not isinstance(value, str) or not value:
            errors.append(invalid(at, f"credential {key} must be a non-empty string"))
    credentials = {k: v for k, v in given.items() if k in allowed and isinstance(v, str) and v}
    groups = REQUIRED_CREDENTIALS.get(kind, ())
    # A key that is no secret may also be a setting (an Azure account_url).
    present = set(credentials) | {k for k, v in body.items() if v is not None}
    if groups and not any(set(g) <= present for g in groups):
        needed = " or ".join(" and ".join(group) for group in groups)
        errors.append(
            invalid(
                "/credentials",
                f"a {kind} output created through the API needs credentials {needed}: "
                "the service's own credentials are never lent",
                "credentials_required",
            )
        )
    return credentials, errors


def _address_problems(
    body: dict[str, Any], credentials: dict[str, str], allow_private: bool, resolve: Resolver
) -> list[ApiError]:
    errors = []
    for field, problem, code in endpoint_problems(body, credentials, allow_private, resolve):
        label = field.replace("credentials/", "credentials.")
        errors.append(invalid(f"/{field}", f"{label} {problem}", code))
    return errors
