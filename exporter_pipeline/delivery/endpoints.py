"""Whether a tenant's output may connect where it says: the addresses of its endpoints.

A tenant's output names the addresses its cloud SDK connects to (an S3 or GCS endpoint,
an Azure account URL or connection string, a service account's `token_uri`). Unlike a
webhook, whose sender connects to the address it vetted (`delivery.addresses`), the SDKs
resolve the name themselves, so the name is resolved here, with the system resolver, and
refused when ANY of its addresses is not public (loopback, private, link-local such as the
metadata service at 169.254.169.254, ...) or when it does not resolve.
`EXPORTER_WEBHOOK_ALLOW_PRIVATE=true` lifts the rule, as for webhooks.

This is checked when the output is created through the API and again each time a tenant's
output is opened (a run, `/test`). It narrows, but cannot close, DNS rebinding: a name
that answers a public address to this check and a private one to the SDK a moment later
still wins (pinning the address would need a transport of our own in each SDK).

Messages never quote the URL, the host or the address: they may carry a secret.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from exporter_pipeline.delivery.addresses import (
    Resolver,
    address_problem,
    parse_webhook_url,
    system_resolver,
    webhook_url_problem,
)
from exporter_pipeline.errors import PermanentDestinationError
from exporter_pipeline.settings import Settings

PUBLIC_ONLY = "an output may reach public addresses only"
# Settings and credentials that are an address the output's client connects to.
ENDPOINTS = ("endpoint_url", "account_url")


def endpoint_problem(
    url: Any, allow_private: bool, resolve: Resolver = system_resolver
) -> str | None:
    """What keeps `url` from being an output's endpoint ("points at a loopback address;
    ..."), or None. Without `allow_private`, the host's name is resolved with `resolve`."""
    if not isinstance(url, str) or isinstance(parsed := parse_webhook_url(url), str):
        return "must be an http or https URL with a valid host"
    if not (urlsplit(url).hostname or "").isascii():
        # IDNA 2003 (Python's codec) and 2008 (requests, the SDKs) map some names to two
        # different hosts: the one checked would not be the one reached.
        return "has a non-ASCII host name: write it in ASCII (punycode, xn--…)"
    if allow_private:
        return None
    if webhook_url_problem(url, allow_private=False) is not None:  # a literal, localhost
        kind = address_problem(parsed.literal) if parsed.literal else "a loopback name"
        return f"points at {kind}; {PUBLIC_ONLY}"
    if parsed.literal is not None:
        return None  # a public IP literal
    try:
        answers = list(resolve(parsed.host, parsed.port))
        # A scope id (`fe80::1%eth0`) is not part of the address the policy judges.
        addresses = [ipaddress.ip_address(str(answer).split("%")[0]) for answer in answers]
    except (OSError, UnicodeError, ValueError):
        addresses = []
    if not addresses:
        return f"has a host name that does not resolve; {PUBLIC_ONLY}"
    for address in addresses:
        kind = address_problem(address)
        if kind:
            return f"has a host name that resolves to {kind}; {PUBLIC_ONLY}"
    return None


def endpoint_problems(
    settings: Mapping[str, Any],
    credentials: Mapping[str, Any],
    allow_private: bool,
    resolve: Resolver = system_resolver,
) -> list[tuple[str, str, str]]:
    """(field, problem, code) for each endpoint of an output that it may not reach, given
    its settings (YAML keys) and credentials (by credential name): the field is
    `endpoint_url` or `credentials/connection_string`, the problem completes a sentence
    naming it, the code is `address_not_allowed` or `invalid_field` (an unreadable
    connection string or service account key)."""
    found: list[tuple[str, Any]] = [(f, settings[f]) for f in ENDPOINTS if settings.get(f)]
    found += [(f"credentials/{f}", credentials[f]) for f in ENDPOINTS if credentials.get(f)]
    unreadable: list[tuple[str, str, str]] = []
    if credentials.get("connection_string"):
        field = "credentials/connection_string"
        try:
            endpoints = azure_connection_endpoints(str(credentials["connection_string"]))
        except ValueError as error:
            unreadable.append((field, str(error), "invalid_field"))
        else:
            found += [(field, endpoint) for endpoint in endpoints]
    if credentials.get("credentials_json"):
        field = "credentials/credentials_json"
        key = service_account_key(str(credentials["credentials_json"]))
        if key is None:
            unreadable.append(
                (field, "must be a service account key (a JSON object)", "invalid_field")
            )
        elif "token_uri" in key:
            found.append((field, key["token_uri"]))
    problems: list[tuple[str, str, str]] = []
    for field, url in found:
        problem = endpoint_problem(url, allow_private, resolve)
        if problem and (field, problem) not in [(f, p) for f, p, _ in problems]:
            problems.append((field, problem, "address_not_allowed"))
    return unreadable + problems


def refuse_unreachable(
    name: str,
    tenant: str | None,
    settings: Mapping[str, Any],
    credentials: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    resolve: Resolver = system_resolver,
) -> None:
    """Before output `name` is opened, if it is a tenant's: a PermanentDestinationError
    naming the first endpoint it may not reach, unless EXPORTER_WEBHOOK_ALLOW_PRIVATE (read
    from `environ`, the process environment by default). Operator outputs (no tenant) are
    not judged, nor endpoints read from the service's environment (`*_env`, set by the
    operator; the API never takes one): they are not among `settings` and `credentials`
    (the output's stored secrets)."""
    # Outputs made through the API always hold stored credentials (a cloud output must
    # bring its own); an operator's YAML output of a tenant has none and is the operator's
    # to vouch for, literal addresses included (an Azurite account_url, say).
    if tenant is None or not credentials or Settings.from_env(environ).webhook_allow_private:
        return
    problems = endpoint_problems(settings, credentials, allow_private=False, resolve=resolve)
    if problems:
        field, problem, _ = problems[0]
        label = field.replace("credentials/", "credentials.")
        raise PermanentDestinationError(f"output {name!r}: {label} {problem}")


def azure_connection_endpoints(connection_string: str) -> list[str]:
    """The blob endpoint the Azure SDK's client made from `connection_string` connects to,
    as the SDK itself parses it (no network call): key names are matched as the SDK matches
    them, not as we would. Only the primary: our retry policy never goes to the secondary
    (`retry_to_secondary` is off). A ValueError when the SDK does not take the string."""
    from azure.storage.blob import BlobServiceClient

    try:
        client = BlobServiceClient.from_connection_string(connection_string)
        endpoint: str = client.primary_endpoint
    except Exception:  # the SDK's parser raises what it likes; never quote the string
        raise ValueError("is not a connection string the Azure SDK accepts") from None
    # A shared access signature rides in the query: only scheme, host and path matter.
    return [endpoint.split("?")[0]]


def service_account_key(text: str) -> dict[str, Any] | None:
    """The JSON object of a service account key, or None (not JSON, not an object, or
    nested too deep for the parser)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
