"""/api/v1/docs: the OpenAPI document rendered by Swagger UI under the desk's CSP."""

from __future__ import annotations

import re

import pytest

from webapp.accounts.access import CSP


def test_the_page_is_public_and_has_no_inline_script(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"] == CSP
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
    page = response.get_data(as_text=True)
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, flags=re.S)
    assert len(scripts) == 2
    assert all('src="' in attributes and not body.strip() for attributes, body in scripts)
    assert "style=" not in page and "<style" not in page
    assert 'data-spec-url="/api/v1/openapi.json"' in page


def test_swagger_ui_files_are_served_and_nothing_else(client, make_user):
    make_user("admin")  # the desk is set up: an unknown address is a 404, not "set up first"
    script = client.get("/api/v1/docs/assets/swagger-ui-bundle.js")
    assert script.status_code == 200
    assert script.mimetype in {"text/javascript", "application/javascript"}
    assert b"SwaggerUIBundle" in script.data
    assert client.get("/api/v1/docs/assets/swagger-ui.css").mimetype == "text/css"
    for name in ("index.html", "oauth2-redirect.html", "..%2F__init__.py", "LICENSE"):
        assert client.get(f"/api/v1/docs/assets/{name}").status_code == 404
    assert client.get("/static/api-docs.js").status_code == 200


def test_the_page_opens_before_setup_too(app):
    """Like the document, the page is open while the desk waits for its first admin."""
    assert app.test_client().get("/api/v1/docs").status_code == 200


@pytest.mark.browser
def test_chromium_renders_every_operation_without_a_csp_violation(
    live_server, browser_page, artifacts_dir, client
):
    document = client.get("/api/v1/openapi.json").json
    operations = sum(
        1
        for item in document["paths"].values()
        for method in item
        if method in {"get", "post", "put", "delete", "patch"}
    )
    refused = []
    page = browser_page
    page.on(
        "console",
        lambda message: refused.append(message.text) if "Refused" in message.text else None,
    )
    page.goto(live_server + "/api/v1/docs")
    page.wait_for_selector(".opblock")
    assert page.locator(".opblock").count() == operations
    assert page.get_by_role("button", name="Authorize").count() == 1
    page.screenshot(path=artifacts_dir / "api-docs.png", full_page=False)
    assert refused == []
