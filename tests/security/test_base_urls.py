"""Issue 12, finding 9: an admin could point an environment at any loopback port.

Replayed as found: base URL `http://127.0.0.1:<port>` + *Test connection* sent the API key to
whatever listened there, showed its answer on the page and wrote it into the audit trail. Now a
base URL whose host is loopback, private-range, link-local, unspecified, multicast or reserved
(in any spelling) is refused unless DESK_HEAP_URL_ALLOWLIST lists it as `host` or `host:port`;
names are checked again when the connection is made; and what a host that is not Heap's answers
is never shown or stored, only its HTTP status.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlmodel import select
from workflow_factories import audit_entries

from webapp import environments
from webapp.config import ConfigError, load_settings
from webapp.db import session_scope
from webapp.heap import HeapClient, HeapURLNotAllowed, check_base_url
from webapp.models import Environment

ROOT = Path(__file__).resolve().parents[2]
SECRET_BODY = "INTERNAL-SECRET-7f3a: the admin console of something else"
API_KEY = "an-api-key-that-must-stay-home"


class InternalService:
    """Something else listening on loopback: it answers 404 with its own secrets."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        seen = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                seen.append({"path": self.path, "auth": self.headers.get("Authorization")})
                body = SECRET_BODY.encode()
                self.send_response(404)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def internal_service():
    service = InternalService()
    yield service
    service.stop()


def stored(app) -> list[tuple[str, str | None]]:
    with app.app_context(), session_scope(write=False) as session:
        return [(e.name, e.base_url) for e in session.exec(select(Environment)).all()]


def form(base_url: str, **fields) -> dict:
    return {
        "name": "Main Production",
        "app_id": "3000610572",
        "region": "us",
        "base_url": base_url,
        "main_production": "y",
        "api_key": API_KEY,
    } | fields


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def test_finding_9_replayed_an_unlisted_loopback_port_is_refused(
    app, auth, login_as, internal_service
):
    app.config["DESK_HEAP_URL_ALLOWLIST"] = []
    login_as("admin")
    response = auth.post("/environments/new", form(internal_service.url))
    page = _text(response)
    assert response.status_code == 400
    assert "This base URL is not allowed" in page and "loopback" in page
    assert "DESK_HEAP_URL_ALLOWLIST" in page
    assert stored(app) == []
    assert internal_service.requests == []


def test_finding_9_a_listed_host_that_is_not_heaps_shows_only_its_status(
    app, auth, login_as, internal_service
):
    app.config["DESK_HEAP_URL_ALLOWLIST"] = [f"127.0.0.1:{internal_service.port}"]
    login_as("admin")
    assert auth.post("/environments/new", form(internal_service.url)).status_code == 302
    [(_, base_url)] = stored(app)
    with app.app_context(), session_scope(write=False) as session:
        env_id = session.exec(select(Environment.id)).one()
    page = _text(
        auth.post(f"/environments/{env_id}/test", form_page="/environments", follow_redirects=True)
    )
    assert [r["path"] for r in internal_service.requests] == ["/api/public/v0/auth_token"]
    assert "the server answered HTTP 404" in page
    assert "INTERNAL-SECRET" not in page
    trail = json.dumps(audit_entries(app))
    assert "INTERNAL-SECRET" not in trail and API_KEY not in trail
    [tested] = audit_entries(app, "environment.connection_tested")
    assert tested["details"] == {"ok": False, "http_status": 404, "error_class": "not_found"}


REFUSED = [
    # loopback, in every spelling
    "http://127.0.0.1:8765",
    "http://127.0.0.2/",
    "http://localhost:8765",
    "http://LOCALHOST./",
    "http://sandbox.localhost:8765",
    "http://[::1]:8765",
    "http://[::ffff:127.0.0.1]:8765",
    "http://[::ffff:7f00:1]/",
    "http://2130706433/",
    "http://0x7f.1/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://017700000001/",
    "http://127.1/",
    # private ranges, link-local, unspecified, multicast, reserved, shared, documentation
    "https://10.0.0.5/",
    "https://172.16.0.1/",
    "https://192.168.1.10/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/",
    "https://[fe80::1]/",
    "https://[fc00::1]/",
    "http://0.0.0.0:8765/",
    "http://0/",
    "http://[::]/",
    "https://224.0.0.1/",
    "https://[ff02::1]/",
    "https://240.0.0.1/",
    "https://255.255.255.255/",
    "https://100.64.0.1/",
    "https://192.0.2.10/",
    "https://[2001:db8::1]/",
    # IPv6 forms that carry a loopback IPv4 address inside
    "https://[64:ff9b::7f00:1]/",
    "https://[2002:7f00:1::]/",
    # schemes, credentials, hosts that are not Heap's
    "ftp://heapanalytics.com/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_FLUSHALL",
    "javascript:alert(1)",
    "https://user:secret@heapanalytics.com",
    "https://heapanalytics.com@127.0.0.1/",
    "http://heapanalytics.com",
    "https://heapanalytics.com.evil.example",
]


@pytest.mark.parametrize("url", REFUSED)
def test_unlisted_hosts_are_refused_by_the_api_and_nothing_is_stored(app, client, api_token, url):
    app.config["DESK_HEAP_URL_ALLOWLIST"] = []
    admin = {"Authorization": f"Bearer {api_token('admin')}"}
    body = {"name": "Hostile", "app_id": "3000610572", "base_url": url}
    response = client.post("/api/v1/environments", headers=admin, json=body)
    assert response.status_code == 422, response.json
    assert response.json["error"]["message"].startswith("This base URL is not allowed (")
    assert stored(app) == []


@pytest.mark.parametrize(
    "url", ["http://2130706433:8765", "http://0x7f.1:8765", "http://127.1:8765"]
)
def test_numeric_spellings_are_refused_even_when_the_address_is_listed(app, url):
    with pytest.raises(HeapURLNotAllowed, match="write the address as"):
        check_base_url(url, ["127.0.0.1"])


def test_the_private_range_messages_say_what_the_host_is(app):
    cases = {
        "http://127.0.0.1:9": "a loopback address",
        "http://localhost:9": "a loopback name",
        "https://10.1.2.3": "a private-range address",
        "http://169.254.169.254": "a link-local address",
        "http://0.0.0.0": "the unspecified address",
        "https://224.0.0.1": "a multicast address",
        "https://240.0.0.1": "a reserved address",
    }
    for url, what in cases.items():
        with pytest.raises(HeapURLNotAllowed) as refused:
            check_base_url(url, [])
        assert what in str(refused.value) and "DESK_HEAP_URL_ALLOWLIST" in str(refused.value)


def test_a_listed_host_port_is_accepted_and_another_port_of_that_host_refused(
    app, client, api_token, sandbox
):
    port = int(sandbox.url.rsplit(":", 1)[1])
    app.config["DESK_HEAP_URL_ALLOWLIST"] = [f"127.0.0.1:{port}"]
    admin = {"Authorization": f"Bearer {api_token('admin')}"}

    def create(name: str, url: str):
        body = {"name": name, "app_id": sandbox.app_id, "base_url": url}
        return client.post("/api/v1/environments", headers=admin, json=body)

    assert create("Listed", sandbox.url).status_code == 201
    other = create("Other port", f"http://127.0.0.1:{port + 1}")
    assert other.status_code == 422 and "loopback" in other.json["error"]["message"]
    assert create("Default port", "http://127.0.0.1/").status_code == 422
    assert create("By name", f"http://localhost:{port}").status_code == 422
    assert stored(app) == [("Listed", sandbox.url)]


def test_a_bare_listed_host_allows_every_port(app):
    assert check_base_url("http://127.0.0.1:1234", ["127.0.0.1"]) == "http://127.0.0.1:1234"
    assert check_base_url("http://[::1]:1234/", ["::1"]) == "http://[::1]:1234"
    assert check_base_url("http://[::1]:1234/", ["[::1]:1234"]) == "http://[::1]:1234"
    assert check_base_url("http://localhost:8765", ["localhost:8765"]) == "http://localhost:8765"


def test_heaps_own_hosts_need_no_listing_but_https():
    assert check_base_url("https://heapanalytics.com/", []) == "https://heapanalytics.com"
    assert check_base_url("https://c.eu.heap-api.com", []) == "https://c.eu.heap-api.com"
    with pytest.raises(HeapURLNotAllowed, match="https"):
        check_base_url("http://heapanalytics.com", [])


def test_a_listed_private_host_still_needs_https():
    assert check_base_url("https://10.0.0.5:8443", ["10.0.0.5:8443"]) == "https://10.0.0.5:8443"
    with pytest.raises(HeapURLNotAllowed, match="https"):
        check_base_url("http://10.0.0.5:8443", ["10.0.0.5:8443"])


def test_an_update_to_an_unlisted_loopback_url_is_refused_and_changes_nothing(
    app, auth, login_as, sandbox
):
    login_as("admin")
    assert auth.post("/environments/new", form(sandbox.url)).status_code == 302
    app.config["DESK_HEAP_URL_ALLOWLIST"] = [sandbox.url.removeprefix("http://")]
    with app.app_context(), session_scope(write=False) as session:
        env_id = session.exec(select(Environment.id)).one()
    response = auth.post(f"/environments/{env_id}", form("http://127.0.0.1:6379", api_key=""))
    assert response.status_code == 400
    assert "This base URL is not allowed" in _text(response)
    assert stored(app) == [("Main Production", sandbox.url)]


@pytest.fixture
def heap_resolves_to_loopback(monkeypatch):
    """DNS says heapanalytics.com is 127.0.0.1 (rebinding, a poisoned resolver)."""
    real = socket.getaddrinfo
    asked = []

    def resolve(host, port, *args, **kwargs):
        asked.append(host)
        if str(host).rstrip(".").lower() == "heapanalytics.com":
            return real("127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    return asked


def test_a_name_resolving_to_loopback_is_refused_when_connecting(heap_resolves_to_loopback):
    client = HeapClient(app_id="3000610572", api_key=API_KEY, region="us")
    with client, pytest.raises(HeapURLNotAllowed, match="resolves to a loopback address"):
        client.test_connection()
    assert "heapanalytics.com" in heap_resolves_to_loopback


def test_test_connection_says_so_and_audits_the_class(app, heap_resolves_to_loopback):
    with app.app_context(), session_scope(write=True) as session:
        env = environments.create_environment(
            session,
            actor="admin",
            data=environments.EnvironmentInput(
                name="Main", app_id="3000610572", main_production=True, api_key=API_KEY
            ),
        )
        ok, message = environments.test_connection(session, actor="admin", environment_id=env.id)
    assert not ok and "resolves to a loopback address" in message
    [tested] = audit_entries(app, "environment.connection_tested")
    assert tested["details"] == {"ok": False, "http_status": None, "error_class": "url_not_allowed"}


def test_a_listed_name_may_resolve_to_loopback(sandbox):
    port = int(sandbox.url.rsplit(":", 1)[1])
    client = HeapClient(
        app_id=sandbox.app_id,
        api_key=sandbox.api_key,
        base_url=f"http://localhost:{port}",
        allowlist=[f"localhost:{port}"],
    )
    with client:
        assert client.test_connection() is True


def test_the_allowlist_setting_is_read_and_checked(tmp_path):
    env = {
        "DESK_SECRET_KEY": "k" * 32,
        "DESK_FINGERPRINT_KEY": "f" * 32,
        "DESK_HEAP_URL_ALLOWLIST": " 127.0.0.1:8765, [::1]:9000 ,Heap-Proxy.example.com,",
    }
    settings = load_settings(tmp_path, env)
    assert settings["DESK_HEAP_URL_ALLOWLIST"] == [
        "127.0.0.1:8765",
        "[::1]:9000",
        "heap-proxy.example.com",
    ]
    for bad in ("127.0.0.1:99999", "http://127.0.0.1:8765", "10.0.0.0/8", "a b"):
        with pytest.raises(ConfigError, match="DESK_HEAP_URL_ALLOWLIST"):
            load_settings(tmp_path, env | {"DESK_HEAP_URL_ALLOWLIST": bad})


def test_make_demo_lists_the_sandbox_and_the_readme_documents_the_setting():
    makefile = (ROOT / "Makefile").read_text()
    assert "DESK_HEAP_URL_ALLOWLIST=127.0.0.1:$(SANDBOX_PORT)" in makefile
    assert "SANDBOX_PORT ?= 8765" in makefile
    readme = (ROOT / "README.md").read_text()
    assert "| `DESK_HEAP_URL_ALLOWLIST` |" in readme and "host:port" in readme
