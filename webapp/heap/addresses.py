"""Which network addresses the desk may send an API key and personal data to.

A host is refused when it is, or resolves to, an address that is not public — loopback, a
private range, link-local, unspecified, multicast, reserved, shared (CGNAT) or documentation —
unless an operator listed it in DESK_HEAP_URL_ALLOWLIST as `host` or `host:port`. The sandbox
is such a host: `make demo` and the tests list it.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from webapp.heap.errors import HeapURLNotAllowed

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# Names every resolver maps to loopback (RFC 6761 reserves `localhost` and all below it).
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
# What inet_aton (and so the resolver behind requests) reads as an IPv4 address: 2130706433,
# 0x7f.1, 0177.0.0.1, 127.1 — one host, many spellings.
_NUMERIC_HOST = re.compile(r"[0-9][0-9a-fx.]*", re.IGNORECASE)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_ALLOWLIST_ENTRY = re.compile(
    r"(?P<host>\[[0-9a-f:.]+\]|[0-9a-f:]*:[0-9a-f:.]*|[a-z0-9_.-]+)(?::(?P<port>[0-9]{1,5}))?",
    re.IGNORECASE,
)


def canonical_host(host: str) -> str:
    """The host as compared: lower case, no trailing dot, no IPv6 brackets."""
    return host.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")


def literal_address(host: str) -> Address | None:
    """The address a host names literally (any spelling the resolver accepts), or None."""
    text = canonical_host(host)
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if _NUMERIC_HOST.fullmatch(text):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def is_numeric_shorthand(host: str) -> bool:
    """True for an IPv4 address not written as four decimal numbers (0x7f.1, 2130706433)."""
    text = canonical_host(host)
    if literal_address(text) is None:
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return True
    return False


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address leads to (mapped, 6to4, Teredo, NAT64, compatible)."""
    inner = [address.ipv4_mapped, address.sixtofour]
    if address.teredo:
        inner.extend(address.teredo)
    packed = int(address)
    if address in _NAT64 or (packed >> 32 == 0 and packed > 1):
        inner.append(ipaddress.IPv4Address(packed & 0xFFFFFFFF))
    return [a for a in inner if a is not None]


def non_public_reason(address: Address) -> str | None:
    """What kind of non-public address this is ("a loopback address", ...), or None."""
    if isinstance(address, ipaddress.IPv6Address):
        address = ipaddress.IPv6Address(address.packed)  # without a zone index
        for inner in _embedded_ipv4(address):
            reason = non_public_reason(inner)
            if reason:
                return reason
    if address.is_loopback:
        return "a loopback address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private-range address"
    if not address.is_global:
        return "a shared or special-purpose address"
    return None


def host_reason(host: str) -> str | None:
    """Why a host as written is not public ("a loopback name", ...), or None if it may be."""
    name = canonical_host(host)
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return "a loopback name"
    address = literal_address(name)
    return non_public_reason(address) if address is not None else None


def is_loopback_host(host: str) -> bool:
    """True for localhost names, 127.0.0.0/8 and ::1 (also IPv4-mapped), in any spelling."""
    return (host_reason(host) or "").startswith("a loopback")


@dataclass(frozen=True)
class Allowlist:
    """DESK_HEAP_URL_ALLOWLIST: `host` (any port) or `host:port` entries."""

    entries: frozenset[tuple[str, int | None]] = frozenset()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Allowlist:
        """Read the entries; raise ValueError naming one that is not `host` or `host:port`."""
        parsed = set()
        for raw in entries:
            text = (raw or "").strip()
            if not text:
                continue
            host, port = split_entry(text)
            parsed.add((host, port))
        return cls(frozenset(parsed))

    def permits(self, host: str, port: int | None) -> bool:
        """True if `host` is listed for any port, or for `port`."""
        name = _comparable(host)
        return (name, None) in self.entries or (port is not None and (name, port) in self.entries)

    def __bool__(self) -> bool:
        return bool(self.entries)


def split_entry(text: str) -> tuple[str, int | None]:
    """`host` or `host:port` (IPv6 as `::1` or `[::1]:8765`) → (comparable host, port)."""
    match = _ALLOWLIST_ENTRY.fullmatch(text.strip())
    if not match:
        raise ValueError(f"{text!r} is not a host or host:port")
    host, port = match["host"], match["port"]
    if ":" in host and not host.startswith("[") and port is None and host.count(":") == 1:
        host, port = host.split(":")  # "name:8765" read as one IPv6-looking token
    number = int(port) if port else None
    if number is not None and not 1 <= number <= 65535:
        raise ValueError(f"{text!r} has a port outside 1..65535")
    if ":" in host and literal_address(host) is None:
        raise ValueError(f"{text!r} is not a host or host:port")
    return _comparable(host), number


def _comparable(host: str) -> str:
    """One spelling per host: addresses in their canonical form, names in lower case."""
    name = canonical_host(host)
    address = literal_address(name)
    if isinstance(address, ipaddress.IPv6Address):
        address = ipaddress.IPv6Address(address.packed)
    return str(address) if address is not None else name


Resolver = Callable[..., list]


class AddressGuard:
    """Resolves a host once, when a connection is made, and vets every address it gets.

    A name checked when the base URL was saved may resolve elsewhere later (DNS rebinding, a
    poisoned resolver): the connection goes to the addresses checked here, and nowhere else.
    """

    def __init__(self, allowlist: Allowlist, *, resolve: Resolver | None = None) -> None:
        self.allowlist = allowlist
        self._resolve = resolve

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to; raise HeapURLNotAllowed if one is not public."""
        name = canonical_host(host)
        resolve = self._resolve or socket.getaddrinfo  # looked up late: tests replace it
        listed = self.allowlist.permits(name, port)
        found: list[str] = []
        for *_, sockaddr in resolve(name, port, type=socket.SOCK_STREAM):
            text = str(sockaddr[0])
            reason = non_public_reason(ipaddress.ip_address(text.split("%", 1)[0]))
            # Only the host as the base URL names it counts: listing 127.0.0.1 (the sandbox)
            # does not let heapanalytics.com resolve there.
            if reason and not listed:
                raise HeapURLNotAllowed(
                    f"host {name} resolves to {reason}; it is refused unless "
                    "DESK_HEAP_URL_ALLOWLIST lists it"
                )
            if text not in found:
                found.append(text)
        if not found:
            raise HeapURLNotAllowed(f"host {name} resolves to no address")
        return found
