"""Where each Heap data centre lives, and which base URLs the desk may talk to."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

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


def is_loopback_host(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 (also as an IPv4-mapped address)."""
    host = host.lower().rstrip(".")
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def check_base_url(url: str, allowlist: Iterable[str] = ()) -> str:
    """Return `url` without a trailing slash, or raise HeapURLNotAllowed.

    The api_key and personal data follow this URL, so it must be http(s) without userinfo,
    query or fragment, and its host loopback (the sandbox), Heap's own, or allow-listed.
    """
    if not isinstance(url, str) or not url.strip():
        raise HeapURLNotAllowed("the Heap base URL is empty")
    # urlsplit is lenient with whitespace and backslashes; browsers and requests differ on
    # them, which is the classic way to smuggle a different host past a check like this one.
    if any(ch.isspace() or ch == "\\" or ord(ch) < 32 for ch in url):
        raise HeapURLNotAllowed("the Heap base URL contains spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise HeapURLNotAllowed("the Heap base URL must start with http:// or https://")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise HeapURLNotAllowed("the Heap base URL must not contain a user name or password")
    if parts.query or parts.fragment:
        raise HeapURLNotAllowed("the Heap base URL must not contain a query or fragment")
    host = (parts.hostname or "").lower()
    if not host:
        raise HeapURLNotAllowed("the Heap base URL has no host")
    try:
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise HeapURLNotAllowed("the Heap base URL has an invalid port") from exc
    if is_loopback_host(host):
        return url.rstrip("/")
    allowed = {name.strip().lower().rstrip(".") for name in allowlist if name and name.strip()}
    if host.rstrip(".") not in HEAP_HOSTNAMES | allowed:
        raise HeapURLNotAllowed(
            f"host {host} is not Heap's, loopback or in the allowlist of Heap hosts"
        )
    # Off the machine, the Basic credentials and personal data must never travel in clear.
    if parts.scheme != "https":
        raise HeapURLNotAllowed("a Heap base URL that is not loopback must use https://")
    return url.rstrip("/")
