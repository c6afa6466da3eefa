"""A fake Heap (ingestion + GDPR user deletion API) over real HTTP, for tests and demos."""

from .app import create_sandbox_app
from .config import DEFAULT_API_KEY, DEFAULT_APP_ID, SandboxConfig
from .faults import Fault
from .server import SandboxServer, make_sandbox_server, start_sandbox
from .state import SandboxState

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
