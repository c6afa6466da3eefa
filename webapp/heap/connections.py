"""HTTP connections that go only where the address guard allows, checked as they are made.

urllib3 resolves a host and connects in one step; these connections resolve it through the
`AddressGuard` instead and connect to exactly the addresses it vetted, so a name cannot be
checked against one address and then reach another.
"""

from __future__ import annotations

import socket
from functools import partial
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util import connection

from webapp.heap.addresses import AddressGuard


class _Guarded:
    """Mixin for urllib3 connections: `_new_conn` through the guard."""

    def __init__(self, *args: Any, address_guard: AddressGuard, **kwargs: Any) -> None:
        self._address_guard = address_guard
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        try:
            addresses = self._address_guard.addresses(self._dns_host, self.port)
        except socket.gaierror as error:
            raise NameResolutionError(self.host, self, error) from error
        failure: Exception | None = None
        for address in addresses:
            try:
                return connection.create_connection(
                    (address, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as error:
                failure = ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
                )
                failure.__cause__ = error
            except OSError as error:
                failure = NewConnectionError(self, f"Failed to establish a new connection: {error}")
                failure.__cause__ = error
        raise failure  # type: ignore[misc]  # addresses is never empty


class GuardedHTTPConnection(_Guarded, HTTPConnection):
    """An http:// connection through the guard."""


class GuardedHTTPSConnection(_Guarded, HTTPSConnection):
    """An https:// connection through the guard (certificate checked against the name)."""


class _GuardedPool:
    def __init__(self, *args: Any, address_guard: AddressGuard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn_kw["address_guard"] = address_guard


class GuardedHTTPConnectionPool(_GuardedPool, HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(_GuardedPool, HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose every new connection goes through `address_guard`."""

    def __init__(self, address_guard: AddressGuard, **kwargs: Any) -> None:
        self.address_guard = address_guard
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        guard = self.address_guard
        self.poolmanager.pool_classes_by_scheme = {
            "http": partial(GuardedHTTPConnectionPool, address_guard=guard),
            "https": partial(GuardedHTTPSConnectionPool, address_guard=guard),
        }

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["address_guard"] = self.address_guard
        return state
