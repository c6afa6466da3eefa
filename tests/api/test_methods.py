"""Methods a path does not have: 405 with the Allow header, on the API and on pages."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "path, method, allowed",
    [
        ("/api/v1/batches", "TRACE", "GET, HEAD, OPTIONS, POST"),
        ("/api/v1/batches/1", "DELETE", "GET, HEAD, OPTIONS"),
        ("/api/v1/health", "PUT", "GET, HEAD, OPTIONS"),
    ],
)
def test_an_undeclared_method_is_405_with_allow(client, api_token, path, method, allowed):
    token = {"Authorization": f"Bearer {api_token('admin')}"}
    for headers in (token, {}):
        response = client.open(path, method=method, headers=headers)
        assert response.status_code == 405
        assert response.headers["Allow"] == allowed
        assert response.json["error"] == {
            "code": "method_not_allowed",
            "message": f"This address answers only {allowed}.",
        }


def test_a_page_answers_405_with_allow_too(client, login_as):
    login_as("officer")
    response = client.open("/batches", method="TRACE")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert "This address answers only GET, HEAD, OPTIONS." in response.get_data(as_text=True)
