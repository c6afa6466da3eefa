"""The main navigation, by role (later features add their entries here)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, request, url_for

from webapp.models import Role


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


def current_item(items: list[NavItem]) -> NavItem | None:
    """The entry the current page belongs to: longest URL prefix, else its blueprint's only one.

    By URL, because two entries may share a blueprint (Accounts and Sign-in security are both
    `admin`; Checkpoints lives under /audit): matching by blueprint alone marked both current.
    """
    best: tuple[int, NavItem] | None = None
    for item in items:
        url = url_for(item.endpoint).rstrip("/")
        if (request.path == url or request.path.startswith(url + "/")) and (
            best is None or len(url) > best[0]
        ):
            best = (len(url), item)
    if best is not None:
        return best[1]
    same = [item for item in items if item.blueprint == request.blueprint]
    return same[0] if len(same) == 1 else None


def init_app(app: Flask) -> None:
    app.jinja_env.globals["nav_items"] = nav_items
    app.jinja_env.globals["nav_current"] = current_item
