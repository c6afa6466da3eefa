"""Pytest fixtures for the Heap sandbox: a started fake Heap and a client pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from webapp.heap import HeapClient
from webapp.sandbox import SandboxServer, start_sandbox

__all__ = [
    "SANDBOX_ALLOWLIST",
    "FakeClock",
    "heap_client",
    "make_heap_client",
    "sandbox",
    "sandbox_as_heap",
    "sandbox_clock",
]

# DESK_HEAP_URL_ALLOWLIST of the tests: the sandboxes listen on 127.0.0.1, on a new port each.
SANDBOX_ALLOWLIST = ["127.0.0.1"]


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start: float = 10_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


@pytest.fixture
def sandbox_clock() -> FakeClock:
    """The sandbox's clock: token expiry, rate windows and deletion completion follow it."""
    return FakeClock()


@pytest.fixture
def sandbox(sandbox_clock: FakeClock) -> Iterator[SandboxServer]:
    """A fake Heap on a free loopback port, stopped after the test."""
    server = start_sandbox(clock=sandbox_clock)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_heap_client(sandbox: SandboxServer) -> Iterator[Callable[..., HeapClient]]:
    """Build HeapClients pointed at the sandbox: small timeouts, tiny backoff; overridable."""
    clients: list[HeapClient] = []

    def make(**overrides: Any) -> HeapClient:
        options: dict[str, Any] = {
            "app_id": sandbox.app_id,
            "api_key": sandbox.api_key,
            "base_url": sandbox.url,
            "timeout": (1, 1.5),
            "backoff_base": 0.01,
            "backoff_max": 1.0,
            "max_attempts": 4,
            "allowlist": list(SANDBOX_ALLOWLIST),
        }
        options.update(overrides)
        client = HeapClient(**options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def heap_client(make_heap_client: Callable[..., HeapClient]) -> HeapClient:
    """A HeapClient talking to the `sandbox` fixture."""
    return make_heap_client()


@pytest.fixture
def sandbox_as_heap(monkeypatch: pytest.MonkeyPatch) -> None:
    """The desk takes the sandbox's host for one of Heap's own, and keeps what it answers.

    By default the sandbox is just another host, whose answers the desk reduces to their HTTP
    status; tests of what the desk keeps of Heap's own texts (redacted) need this instead.
    """
    from webapp.heap import hosts

    monkeypatch.setattr(hosts, "HEAP_HOSTNAMES", hosts.HEAP_HOSTNAMES | {"127.0.0.1"})
