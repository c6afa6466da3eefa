"""Shared pytest fixtures: app, client, runner, auth, and the Heap sandbox."""

from sandbox_fixtures import *  # noqa: F401,F403  (the Heap sandbox fixtures)
