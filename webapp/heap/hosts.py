"""Where each Heap data centre lives, and which base URLs the desk may talk to."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from webapp.heap.addresses import (
    Allowlist,
    canonical_host,
    host_reason,
    is_loopback_host,
    is_numeric_shorthand,
    literal_address,
)
from webapp.heap.errors import HeapURLNotAllowed, HeapValidationError

US_HOST = "https://heapanalytics.com"
EU_INGESTION_HOST = "https://c.eu.heap-api.com"
# Heap's deletion page covers both data centres with the one host.
DELETION_HOST = "https://heapanalytics.com"
HEAP_HOSTNAMES = frozenset({"heapanalytics.com", "c.eu.heap-api.com"})
REGIONS = ("us", "eu")


@dataclass(frozen=True)
class HeapHosts:
    """Base URLs (no trailing slash) of the ingestion and the user deletion APIs."""

    ingestion: str
    deletion: str


def resolve_hosts(region: str = "us", base_url: str | None = None) -> HeapHosts:
    """Return the base URLs for a data centre; `base_url` (e.g. the sandbox) overrides both."""
    if base_url:
        base = base_url.rstrip("/")
        return HeapHosts(ingestion=base, deletion=base)
    key = (region or "").strip().lower()
    if key == "us":
        return HeapHosts(ingestion=US_HOST, deletion=DELETION_HOST)
    if key == "eu":
        return HeapHosts(ingestion=EU_INGESTION_HOST, deletion=DELETION_HOST)
    raise HeapValidationError(f"region must be one of {', '.join(REGIONS)}", field="region")


def is_heap_host(host: str | None) -> bool:
    """True for Heap's own hosts (heap-api.md), the only ones whose answers the desk keeps."""
    return canonical_host(host or "") in HEAP_HOSTNAMES


def check_base_url(url: str, allowlist: Iterable[str] = ()) -> str:
    """Return `url` without a trailing slash, or raise HeapURLNotAllowed saying why.

    The api_key and personal data follow this URL, so it must be http(s) without userinfo,
    query or fragment, and its host Heap's own or listed in DESK_HEAP_URL_ALLOWLIST (`host`
    or `host:port`). Loopback, private-range and other non-public hosts — the sandbox, or
    whatever else listens there — are accepted only when listed; names are vetted again when
    a connection is made (addresses.AddressGuard).
    """
    if not isinstance(url, str) or not url.strip():
        raise HeapURLNotAllowed("the Heap base URL is empty")
    # urlsplit is lenient with whitespace and backslashes; browsers and requests differ on
    # them, which is the classic way to smuggle a different host past a check like this one.
    if any(ch.isspace() or ch == "\\" or ord(ch) < 32 for ch in url):
        raise HeapURLNotAllowed("the Heap base URL contains spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise HeapURLNotAllowed("the Heap base URL must start with http:// or https://")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise HeapURLNotAllowed("the Heap base URL must not contain a user name or password")
    if parts.query or parts.fragment:
        raise HeapURLNotAllowed("the Heap base URL must not contain a query or fragment")
    host = canonical_host(parts.hostname or "")
    if not host:
        raise HeapURLNotAllowed("the Heap base URL has no host")
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError as exc:
        raise HeapURLNotAllowed("the Heap base URL has an invalid port") from exc
    if is_numeric_shorthand(host):
        raise HeapURLNotAllowed(
            f"host {host} is a numeric shorthand for {literal_address(host)}; write the address "
            "as four decimal numbers"
        )
    try:
        allowed = Allowlist.parse(allowlist)
    except ValueError as exc:
        raise HeapURLNotAllowed(f"DESK_HEAP_URL_ALLOWLIST: {exc}") from None
    reason = host_reason(host)
    if reason and not allowed.permits(host, port):
        raise HeapURLNotAllowed(
            f"host {host} is not Heap's: it is {reason}, refused unless DESK_HEAP_URL_ALLOWLIST "
            f"lists it (as {_entry(host)} or {_entry(host)}:{port})"
        )
    if not reason and not is_heap_host(host) and not allowed.permits(host, port):
        raise HeapURLNotAllowed(
            f"host {host} is not Heap's, loopback or another host listed in DESK_HEAP_URL_ALLOWLIST"
        )
    # Off the machine, the Basic credentials and personal data must never travel in clear.
    if parts.scheme.lower() != "https" and not is_loopback_host(host):
        raise HeapURLNotAllowed("a Heap base URL that is not loopback must use https://")
    return url.rstrip("/")


def _entry(host: str) -> str:
    """The host as an allowlist entry spells it (IPv6 in brackets when a port follows)."""
    return f"[{host}]" if ":" in host else host
