"""Where a webhook may go, and how its URL is shown: pure functions, no Dagster.

A webhook URL comes from a tenant, so it is a stranger's input twice over:

* Its **address** may point inside our network (loopback, a private range, the cloud
  metadata service at 169.254.169.254). `webhook_url_problem` refuses such a URL when
  the definition is validated (an IP literal, `localhost`); `vet_host` refuses it again
  when the webhook is sent, after resolving the name, because a public-looking name can
  resolve to anything. A name is refused if ANY of its addresses is not public, so a
  DNS answer that mixes a public and a private address cannot win by ordering.
  `EXPORTER_WEBHOOK_ALLOW_PRIVATE=true` lifts the address rules (tests, the demo).
* Its **query string** (and userinfo, and fragment) may carry a token, so `redact_url`
  is the only form of the URL that appears in an error, a log line or metadata.

Why the sender connects to the vetted address rather than the name: if the HTTP client
resolved the name again, a DNS server answering with a short TTL could give a public
address to our check and 127.0.0.1 to the connection (DNS rebinding). `webhook.py`
therefore builds its request URL from the vetted IP literal and sends the original name
in the `Host` header and, for https, as httpx's `sni_hostname` request extension, which
httpcore uses as `server_hostname` for TLS: SNI and certificate verification still
happen against the name, while the TCP connection can only go to the address checked
here. (A custom httpcore network backend would do the same, but httpx has no public hook
to install one; the request-level route needs nothing private.)
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from exporter_pipeline.errors import ExporterError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the addresses the name resolves to, as text; `socket.getaddrinfo` in
# production, a table in tests.
Resolver = Callable[[str, int], Sequence[str]]

SCHEMES = {"http": 80, "https": 443}
REQUEST_TARGET_SAFE = "!$%&'()*+,/:;=?@[]"
ALLOW_HINT = "webhooks go only to public addresses unless EXPORTER_WEBHOOK_ALLOW_PRIVATE=true"
CREDENTIALS_PROBLEM = (
    "must not carry credentials; put a token in the query string or use the signing secret"
)
# The kinds of address a webhook may not reach, checked in this order: the first that
# applies names the address in the message (127.0.0.1 is also "private" for Python).
ADDRESS_KINDS = (
    ("is_unspecified", "an unspecified address"),
    ("is_loopback", "a loopback address"),
    ("is_link_local", "a link-local address"),
    ("is_multicast", "a multicast address"),
    ("is_reserved", "a reserved address"),
    ("is_private", "a private address"),
)
# IPv6 prefixes that carry an IPv4 address a gateway would forward to (RFC 6052 NAT64).
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# A DNS label: letters, digits, hyphens (and underscores, which real names use).
HOST_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
# A last label that is a number: `127.1`, `2130706433`, `0x7f.1` are IPv4 in the
# resolver's legacy forms. No top-level domain is numeric, so such a name is refused.
NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


def redact_url(url: str) -> str:
    """The URL as it may be shown: no userinfo, and `?…` for a query (`#…` for a fragment).

    Scheme, host, port and path stay, so a person can still tell which receiver it was.
    A URL too broken to parse is shown as `<invalid URL>` rather than quoted.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<invalid URL>"
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal gets its brackets back
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    shown = f"{parts.scheme}://{netloc}{parts.path}"
    if parts.query:
        shown += "?…"
    if parts.fragment:
        shown += "#…"
    return shown


def address_problem(address: IPAddress) -> str | None:
    """What kind of non-public address this is (`"a loopback address"`), or None."""
    if isinstance(address, ipaddress.IPv6Address):
        # IPv6 forms that embed an IPv4 address are judged by the address they embed.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            inner = address_problem(embedded)
            return f"{inner} (IPv4 {embedded} inside IPv6)" if inner else None
    for attribute, kind in ADDRESS_KINDS:
        if getattr(address, attribute):
            return kind
    if not address.is_global:  # shared address space 100.64/10 and the like
        return "a special-purpose address"
    return None


def ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _is_localhost(host: str) -> bool:
    name = host.rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


def _host_name_problem(host: str) -> str | None:
    name = host.rstrip(".")
    labels = name.split(".")
    if not name or len(name) > 253 or not all(HOST_LABEL.match(label) for label in labels):
        return f"host {host!r} is not a valid host name"
    if NUMERIC_LABEL.match(labels[-1]):
        return f"host {host!r} looks like an IP address in a legacy form; write it dotted"
    return None


@dataclass(frozen=True)
class WebhookTarget:
    """A webhook URL taken apart the one way both the check and the sender use."""

    scheme: str
    host: str  # lower case, IDNA-encoded ASCII; an IPv6 literal without brackets
    port: int
    target: str  # path and query, as sent on the request line
    literal: IPAddress | None  # the host as an address, when it is an IP literal

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == SCHEMES[self.scheme] else f"{host}:{self.port}"


def parse_webhook_url(url: str) -> WebhookTarget | str:
    """The URL's parts, or what is wrong with it (a message that never quotes the query)."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return "must not contain spaces or control characters"
    if "\\" in url:  # parsers disagree about backslashes; refuse rather than guess
        return "must not contain backslashes"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a valid URL (check the host and port)"
    if parts.scheme not in SCHEMES:
        return "must be an http or https URL"
    if "@" in parts.netloc:
        return CREDENTIALS_PROBLEM
    host = parts.hostname or ""
    if not host:
        return "has no host"
    literal = ip_literal(host)
    if literal is None:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return f"host {host!r} is not a valid host name"
        problem = _host_name_problem(host)
        if problem:
            return problem
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # The request line is ASCII: other characters go percent-encoded as UTF-8, and
    # what is already percent-encoded is left alone.
    target = quote(target, safe=REQUEST_TARGET_SAFE)
    return WebhookTarget(
        scheme=parts.scheme,
        host=host,
        port=port if port is not None else SCHEMES[parts.scheme],
        target=target,
        literal=literal,
    )


def webhook_url_problem(url: str, allow_private: bool) -> str | None:
    """What is wrong with a webhook URL at definition time, or None if it may be used.

    The message completes "url ...", e.g. `host 127.0.0.1 is a loopback address; ...`.
    It never quotes the query string. The name is not resolved here: DNS answers change,
    so the address of a name is checked when the webhook is sent (`vet_host`).
    """
    parsed = parse_webhook_url(url)
    if isinstance(parsed, str):
        return parsed
    if allow_private:
        return None
    if parsed.literal is not None:
        kind = address_problem(parsed.literal)
        return f"host {parsed.host} is {kind}; {ALLOW_HINT}" if kind else None
    if _is_localhost(parsed.host):
        return f"host {parsed.host} is a loopback name; {ALLOW_HINT}"
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, in the system resolver's order."""
    answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(sockaddr[0]) for *_, sockaddr in answers]


class AddressRefused(ExporterError):
    """The host is, or resolves to, an address a webhook may not reach."""


def vet_host(target: WebhookTarget, allow_private: bool, resolve: Resolver) -> IPAddress:
    """The address to connect to for `target`, after checking every address of its host.

    Raises `AddressRefused` if any address is not public (unless `allow_private`), and
    `OSError` (socket.gaierror) if the name does not resolve: the caller may retry that.
    """
    if target.literal is not None:
        kind = address_problem(target.literal)
        if kind and not allow_private:
            raise AddressRefused(f"host {target.host} is {kind}; {ALLOW_HINT}")
        return target.literal
    if _is_localhost(target.host) and not allow_private:
        raise AddressRefused(f"host {target.host} is a loopback name; {ALLOW_HINT}")
    answers = list(resolve(target.host, target.port))
    if not answers:
        raise OSError(f"{target.host} resolved to no address")
    # A scope id (`fe80::1%eth0`) is not part of the address the policy judges.
    addresses = [ipaddress.ip_address(answer.split("%")[0]) for answer in answers]
    if not allow_private:
        for answer, address in zip(answers, addresses, strict=True):
            kind = address_problem(address)
            if kind:
                raise AddressRefused(f"{target.host} resolves to {answer}, {kind}; {ALLOW_HINT}")
    return addresses[0]
