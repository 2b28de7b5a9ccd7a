"""The endpoint rule of tenants' outputs (`delivery.endpoints`), pure: every name is
resolved by a table the test injects, never by real DNS, so nothing leaves the machine.
A name is refused when any of its addresses is not public or when it does not resolve,
Azure connection strings are judged on the endpoint the SDK itself parses, and a tenant's
output is judged again when the store opens it."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest

from exporter_pipeline.api.errors import ApiErrors
from exporter_pipeline.api.output_rules import OutputRequest, read_output_request
from exporter_pipeline.delivery.endpoints import (
    azure_connection_endpoints,
    endpoint_problem,
    refuse_unreachable,
)
from exporter_pipeline.errors import PermanentDestinationError
from exporter_pipeline.settings import Settings

DNS = {
    "evil.example": ["169.254.169.254"],
    "mixed.example": ["93.184.216.34", "10.0.0.7"],
    "v6.example": ["::ffff:127.0.0.1"],
    "kube.svc.cluster.local": ["10.96.0.10"],
    "storage.example": ["93.184.216.34"],
    "acct.blob.public.example": ["20.60.0.4"],
    "a.blob.core.windows.net": ["20.60.0.5"],
}


def table(host: str, port: int) -> Sequence[str]:
    if host not in DNS:
        raise OSError(f"{host} does not resolve (test table)")
    return DNS[host]


SETTINGS = Settings.from_env({"EXPORTER_WEBHOOK_ALLOW_PRIVATE": "false"})
KEY = "a2V5"  # base64, as the SDK wants an account key
DOTLESS = "BlobEndpo\u0131nt"  # with U+0131 DOTLESS I: our old parser missed it


def s3(endpoint: str) -> dict[str, Any]:
    credentials = {"endpoint_url": endpoint, "access_key_id": "k", "secret_access_key": "s"}
    return {"name": "a", "type": "s3", "bucket": "b", "credentials": credentials}


def azure(connection_string: str) -> dict[str, Any]:
    return {
        "name": "a",
        "type": "azure",
        "container": "c",
        "credentials": {"connection_string": connection_string},
    }


def refusals(body: dict[str, Any], settings: Settings = SETTINGS) -> list[tuple[str, str]]:
    with pytest.raises(ApiErrors) as raised:
        read_output_request(body, "acme", settings, resolve=table)
    return [(e.pointer or "", e.code) for e in raised.value.errors]


def accepted(body: dict[str, Any], settings: Settings = SETTINGS) -> OutputRequest:
    return read_output_request(body, "acme", settings, resolve=table)


@pytest.mark.parametrize(
    "host", ["evil.example", "mixed.example", "v6.example", "kube.svc.cluster.local", "nx.example"]
)
def test_a_name_with_any_non_public_address_or_none_is_refused(host: str) -> None:
    assert refusals(s3(f"http://{host}:9000")) == [
        ("/credentials/endpoint_url", "address_not_allowed")
    ]


def test_every_endpoint_field_is_resolved() -> None:
    gcs_key = '{"type": "service_account", "token_uri": "https://evil.example/token"}'
    gcs = {"name": "a", "type": "gcs", "bucket": "b", "credentials": {"credentials_json": gcs_key}}
    assert refusals(gcs) == [("/credentials/credentials_json", "address_not_allowed")]
    account = {
        "name": "a",
        "type": "azure",
        "container": "c",
        "account_url": "https://evil.example/acct",
        "credentials": {"account_key": KEY},
    }
    assert refusals(account) == [("/account_url", "address_not_allowed")]
    assert refusals(azure(f"AccountName=a;AccountKey={KEY};BlobEndpoint=https://evil.example/a"))


def test_public_names_pass_and_allow_private_lifts_the_rule() -> None:
    assert accepted(s3("https://storage.example")).credentials["endpoint_url"]
    assert accepted(azure(f"AccountName=acct;AccountKey={KEY};EndpointSuffix=public.example"))
    private = dataclasses.replace(SETTINGS, webhook_allow_private=True)
    assert accepted(s3("http://evil.example:9000"), private)
    assert accepted(s3("http://nx.example:9000"), private)


def test_messages_quote_neither_the_host_nor_the_address() -> None:
    problem = endpoint_problem("http://evil.example/?token=SECRET", False, table)
    assert problem == (
        "has a host name that resolves to a link-local address; "
        "an output may reach public addresses only"
    )
    unresolved = endpoint_problem("http://nx.example", False, table)
    assert unresolved is not None and "does not resolve" in unresolved


@pytest.mark.parametrize(
    "connection_string",
    [
        # The SDK matches key names upper-cased: a dotless i upper-cases to I.
        f"DefaultEndpointsProtocol=http;AccountName=a;AccountKey={KEY};"
        f"{DOTLESS}=http://127.0.0.1:10000/a",
        # With a space the key is not BlobEndpoint for the SDK, which goes to the account's
        # default endpoint instead: judged on that (unknown to the table: refused).
        f"DefaultEndpointsProtocol=http;AccountName=nx;AccountKey={KEY};"
        "BlobEndpoint =http://127.0.0.1:10000/a",
        # ... and without an account the SDK takes no endpoint at all.
        f"DefaultEndpointsProtocol=http;AccountKey={KEY};BlobEndpoint =http://127.0.0.1:10000/a",
        "UseDevelopmentStorage=true",
        "not a connection string",
    ],
)
def test_connection_strings_are_judged_as_the_sdk_reads_them(connection_string: str) -> None:
    (refusal,) = refusals(azure(connection_string))
    assert refusal[0] == "/credentials/connection_string"


def test_the_sdk_endpoint_of_a_connection_string() -> None:
    dotless = f"AccountName=a;AccountKey={KEY};{DOTLESS}=http://127.0.0.1:10000/a"
    assert azure_connection_endpoints(dotless) == ["http://127.0.0.1:10000/a/"]
    spaced = f"AccountName=a;AccountKey={KEY};BlobEndpoint =http://127.0.0.1:10000/a"
    assert azure_connection_endpoints(spaced) == ["https://a.blob.core.windows.net/"]
    assert endpoint_problem(azure_connection_endpoints(spaced)[0], False, table) is None
    sas = "SharedAccessSignature=sv=1&sig=SECRET;BlobEndpoint=https://storage.example/a"
    assert azure_connection_endpoints(sas) == ["https://storage.example/a/"]


def test_bodies_that_used_to_raise_are_refused_at_their_field() -> None:
    for kind in ([], {}, 1, None):
        assert refusals({"name": "a", "type": kind}) == [("/type", "invalid_field")]
    deep = {
        "name": "a",
        "type": "gcs",
        "bucket": "b",
        "credentials": {"credentials_json": "[" * 1000},
    }
    assert refusals(deep) == [("/credentials/credentials_json", "invalid_field")]


def test_a_tenants_output_is_judged_again_when_opened() -> None:
    settings = {"bucket": "b", "account_url": "https://evil.example/acct"}
    environ = {"EXPORTER_WEBHOOK_ALLOW_PRIVATE": "false"}
    key = {"account_key": KEY}  # made through the API: its credentials are stored
    with pytest.raises(PermanentDestinationError, match=r"output 'a': account_url has a host"):
        refuse_unreachable("a", "acme", settings, key, environ, table)
    # A tenant's output from the operator's YAML stores no credentials: the operator's.
    refuse_unreachable("a", "acme", settings, {}, environ, table)
    endpoint = {"endpoint_url": "http://evil.example:9000"}
    with pytest.raises(PermanentDestinationError, match=r"credentials\.endpoint_url"):
        refuse_unreachable("a", "acme", {}, endpoint, environ, table)
    # Operator outputs, and every output when private addresses are allowed, are not judged.
    refuse_unreachable("a", None, settings, endpoint, environ, table)
    refuse_unreachable(
        "a", "acme", settings, endpoint, {"EXPORTER_WEBHOOK_ALLOW_PRIVATE": "true"}, table
    )
    refuse_unreachable(
        "a", "acme", {"bucket": "b"}, {"endpoint_url": "https://storage.example"}, environ, table
    )


def test_a_non_ascii_host_is_refused_before_any_lookup() -> None:
    # `straße` is `strasse` to Python's IDNA 2003 codec but `xn--strae-oqa` to requests
    # (IDNA 2008): the host checked would not be the host reached.
    for host in ("stra\u00dfe.example", "\u03c3\u03c2.example", "a\u200d.example"):
        problem = endpoint_problem(f"https://{host}/", False, table)
        assert problem == "has a non-ASCII host name: write it in ASCII (punycode, xn--…)"
        assert host not in problem
