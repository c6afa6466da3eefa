"""The main navigation, by role (later features add their entries here)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from .models import Role


@dataclass(frozen=True)
class NavItem:
    label: str
    endpoint: str
    role: Role

    @property
    def blueprint(self) -> str:
        return self.endpoint.partition(".")[0]


NAV: list[NavItem] = [
    NavItem("Batches", "batches.index", Role.AUDITOR),
    NavItem("Lookup", "subjects.lookup", Role.AUDITOR),
    NavItem("Corrections", "corrections.index", Role.AUDITOR),
    NavItem("Environments", "environments.index", Role.AUDITOR),
    NavItem("Audit trail", "audit.index", Role.AUDITOR),
    NavItem("Checkpoints", "evidence.checkpoint_list", Role.AUDITOR),
    NavItem("Accounts", "admin.users", Role.ADMIN),
    NavItem("Sign-in security", "admin.security", Role.ADMIN),
]


def nav_items(principal) -> list[NavItem]:
    """The entries this person may open (features not installed are left out)."""
    views = current_app.view_functions
    return [item for item in NAV if item.endpoint in views and principal.can(item.role)]


def init_app(app: Flask) -> None:
    app.jinja_env.globals["nav_items"] = nav_items
