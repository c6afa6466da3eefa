"""A fake Heap (ingestion + GDPR user deletion API) over real HTTP, for tests and demos."""

from webapp.sandbox.app import create_sandbox_app
from webapp.sandbox.config import DEFAULT_API_KEY, DEFAULT_APP_ID, SandboxConfig
from webapp.sandbox.faults import Fault
from webapp.sandbox.server import SandboxServer, make_sandbox_server, start_sandbox
from webapp.sandbox.state import SandboxState

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_APP_ID",
    "Fault",
    "SandboxConfig",
    "SandboxServer",
    "SandboxState",
    "create_sandbox_app",
    "make_sandbox_server",
    "start_sandbox",
]
