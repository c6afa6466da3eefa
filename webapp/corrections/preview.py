"""What an officer sees before a correction is sent: its calls, warnings and guard findings."""

from __future__ import annotations

from dataclasses import dataclass

from webapp.corrections.guard import GuardHit, guard_message
from webapp.corrections.plans import Plan
from webapp.models import Environment


@dataclass
class Preview:
    """A validated correction before it is sent: its calls, warnings and guard findings."""

    environment: Environment
    plan: Plan
    hits: list[GuardHit]
    # The environment's policy asks a second officer to approve it before it is sent.
    needs_approval: bool = False

    @property
    def guard_message(self) -> str | None:
        return guard_message(self.hits) if self.hits else None

    @property
    def needs_confirmation(self) -> bool:
        return any(notice.confirm for notice in self.plan.notices)
