"""The witness, over real HTTP: `desk audit witness` and the witness.py an auditor downloads keep
the desk's signed tree head and catch a rewrite, a fork, a rollback, a forged head or a new key.

Every scenario runs twice: through the CLI (CliRunner, in this process) and through the script
downloaded from /api/v1/audit/witness.py, saved and run by a separate `python3 -I` (standard
library only). Both must give the same exit code and name the same thing.
"""

from __future__ import annotations

import ast
import base64
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
import urllib.request
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from conftest import FAST_ARGON2, ON_POSTGRES, _pg_exec, _pg_url
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from evidence_fixtures import *  # noqa: F401,F403
from evidence_fixtures import seed
from sqlmodel import Session, select
from werkzeug.serving import make_server

from webapp import create_app
from webapp.accounts import tokens as api_tokens
from webapp.accounts import users as accounts
from webapp.cli import audit_witness
from webapp.db import get_engine, session_scope
from webapp.evidence import signing, tree_heads, verifier_script, witness, witness_script
from webapp.models import AuditEntry, AuditTreeHead, AuditTreeNode
from webapp.trail import audit, merkle, tree

# --- a desk served over real HTTP ---------------------------------------------------------


@contextmanager
def serving(app):
    """The desk on a free loopback port, in a thread, as a witness reaches it."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def token_for(app, role: str = "auditor") -> str:
    """An API token for a new account of `role` on this desk."""
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.org"
    with app.app_context(), session_scope(write=True) as session:
        accounts.create_user(
            session, actor="test", email=email, password="correct horse battery", role=role
        )
        session.commit()
        user = accounts.find_user(session, email)
        return api_tokens.create_api_token(session, actor="test", user=user, name="witness")


def sign_head(app) -> dict:
    """Sign the tree as it stands (tree_heads.issue) and return the head as the API shows it."""
    head = tree_heads.issue(app)
    return tree_heads.sth_dict(head)


def latest_head(app) -> dict:
    with app.app_context(), session_scope(write=False) as session:
        return tree_heads.sth_dict(tree_heads.latest(session))


@dataclass
class Desk:
    app: object
    url: str
    token: str


@pytest.fixture
def desk(app, signing_key_env):
    """A desk with an auditor's token, a trail of a dozen entries and a signed head, served."""
    token = token_for(app)
    seed(app, 10)
    sign_head(app)
    with serving(app) as url:
        yield Desk(app, url, token)


@pytest.fixture
def other_app(desk_env, signing_key_env, template_database, tmp_path):
    """A second desk with a database of its own and the SAME signing key (env)."""
    if ON_POSTGRES:
        name = f"desk_w_{uuid.uuid4().hex[:12]}"
        _pg_exec(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
        url = _pg_url(name)
    else:
        target = tmp_path / "other.db"
        shutil.copy(template_database, target)
        url = f"sqlite:///{target}"
    other = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": url,
            "INSTANCE_PATH": str(tmp_path / "other-instance"),
            "ARGON2_PARAMS": FAST_ARGON2,
            "DESK_2FA_REQUIRED_ROLES": "",
        }
    )
    yield other
    engine = other.extensions.get("desk_engine")
    if engine is not None:
        engine.dispose()
    if ON_POSTGRES:
        _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the two ways to witness ----------------------------------------------------------------


@dataclass
class Run:
    code: int
    output: str


class Witness:
    """One witness (one state file), run as `desk audit witness` or as the downloaded script."""

    def __init__(self, how: str, folder: Path, name: str = "witness"):
        self.how = how
        self.state = folder / name / "state.json"
        self.script = folder / f"{name}.py"

    def download(self, desk: Desk) -> None:
        """Fetch witness.py from the desk, as an auditor would (its key is pinned in it)."""
        request = urllib.request.Request(
            f"{desk.url}/api/v1/audit/witness.py",
            headers={"Authorization": f"Bearer {desk.token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["Content-Type"].startswith("text/x-python")
            self.script.write_bytes(response.read())

    def prepare(self, desk: Desk) -> None:
        """The script mode's copy: downloaded from the desk (or, without one, the bare source)."""
        if self.how != "script" or self.script.exists():
            return
        if desk.app is None:
            self.script.write_text(witness.SCRIPT.read_text("utf-8"), "utf-8")
        else:
            self.download(desk)

    def __call__(self, desk: Desk, *extra: str, url: str | None = None) -> Run:
        args = ["--url", url or desk.url, "--state", str(self.state), "--token", desk.token]
        args += list(extra)
        if self.how == "cli":
            result = CliRunner().invoke(audit_witness, args)
            return Run(result.exit_code, result.output)
        self.prepare(desk)
        # -I: no PYTHON* variables, no user site; -S: no site-packages either, so only the
        # standard library can be imported, as on an auditor's machine.
        done = subprocess.run(
            [sys.executable, "-I", "-S", str(self.script), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return Run(done.returncode, done.stdout + done.stderr)

    def kept(self) -> dict:
        return json.loads(self.state.read_text("utf-8"))


@pytest.fixture(params=["cli", "script"])
def how(request) -> str:
    return request.param


@pytest.fixture
def make_witness(how, tmp_path):
    return lambda name="witness": Witness(how, tmp_path, name)


# --- tampering behind the desk's back (triggers dropped: a DBA gone rogue) --------------------


@contextmanager
def rogue_dba(app):
    with app.app_context(), get_engine().begin() as connection:
        audit.drop_triggers(connection)
        audit.drop_tree_triggers(connection)
        yield connection
        audit.create_triggers(connection)
        audit.create_tree_triggers(connection)


def drop_nodes_from(connection, leaf: int) -> None:
    """Delete every tree node covering leaf `leaf` or a later one (tree.build redoes them)."""
    nodes = connection.execute(sa.select(AuditTreeNode.level, AuditTreeNode.idx)).all()
    for level, idx in nodes:
        if (idx + 1) << level > leaf:
            connection.execute(
                sa.delete(AuditTreeNode).where(
                    AuditTreeNode.level == level, AuditTreeNode.idx == idx
                )
            )


def rewrite_entry(app, seq: int, actor: str = "mallory") -> None:
    """Change entry `seq`, recompute its and every later hash, rebuild the tree from there."""
    with app.app_context(), session_scope(write=False) as session:
        entries = list(audit.iter_entries(session))
    entries[seq - 1]["actor"] = actor
    for number in range(seq - 1, len(entries)):
        entry = entries[number]
        entry["prev_hash"] = entries[number - 1]["hash"] if number else audit.GENESIS_HASH
        entry["hash"] = audit.entry_hash(entry)
    with rogue_dba(app) as connection:
        for entry in entries[seq - 1 :]:
            connection.execute(
                sa.update(AuditEntry)
                .where(AuditEntry.seq == entry["seq"])
                .values(actor=entry["actor"], prev_hash=entry["prev_hash"], hash=entry["hash"])
            )
        drop_nodes_from(connection, seq - 1)
        with Session(bind=connection) as session:
            tree.build(session)
            session.flush()
    with app.app_context(), session_scope(write=False) as session:
        assert audit.verify(session).ok  # the chain alone no longer shows anything


def roll_back_to(app, size: int) -> None:
    """Cut the trail, its tree and its heads back to `size` entries (an old backup restored)."""
    with rogue_dba(app) as connection:
        connection.execute(sa.delete(AuditTreeHead).where(AuditTreeHead.tree_size > size))
        connection.execute(sa.delete(AuditEntry).where(AuditEntry.seq > size))
        drop_nodes_from(connection, size)


def tree_size(app) -> int:
    with app.app_context(), session_scope(write=False) as session:
        return tree.size(session)


# --- what a witness sees ----------------------------------------------------------------------


def test_first_run_pins_the_key_and_keeps_the_head(desk, make_witness):
    witness_a = make_witness()
    run = witness_a(desk)
    assert run.code == 0, run.output
    head = latest_head(desk.app)
    assert f"ok: {head['tree_size']} entries" in run.output and "first head kept" in run.output
    key_id = signing.public_key(desk.app).key_id
    kept = witness_a.kept()
    assert kept["format"] == "deletion-desk/witness-state/v1"
    assert kept["key_id"] == key_id and kept["sth"] == head and kept["alerts"] == []
    assert kept["public_key_hex"] == signing.public_key(desk.app).raw.hex()
    assert kept["url"] == desk.url
    assert stat.S_IMODE(os.stat(witness_a.state).st_mode) == 0o600
    assert os.listdir(witness_a.state.parent) == ["state.json"]  # no temporary file left


def test_growth_is_proven_consistent_and_kept(desk, make_witness):
    witness_a = make_witness()
    first = latest_head(desk.app)
    assert witness_a(desk).code == 0
    seed(desk.app, 5)
    second = sign_head(desk.app)
    assert second["tree_size"] == first["tree_size"] + 5
    run = witness_a(desk)
    assert run.code == 0, run.output
    assert f"consistent with the kept head of {first['tree_size']} entries" in run.output
    assert witness_a.kept()["sth"] == second
    again = witness_a(desk)
    assert again.code == 0 and "unchanged since the kept head" in again.output


def test_quiet_prints_nothing_when_all_is_well(desk, make_witness):
    run = make_witness()(desk, "--quiet")
    assert run.code == 0 and run.output == ""


def test_a_rewrite_of_the_tail_with_recomputed_hashes_is_caught(desk, make_witness):
    witness_a = make_witness()
    kept = latest_head(desk.app)
    assert witness_a(desk).code == 0
    rewrite_entry(desk.app, kept["tree_size"] - 4)  # an entry the kept head covers
    seed(desk.app, 3)
    served = sign_head(desk.app)  # the desk's own key signs the rewritten tree
    run = witness_a(desk)
    assert run.code == 1, run.output
    assert "ALERT rewrite" in run.output and "not consistent" in run.output
    assert f"head of {kept['tree_size']} entries" in run.output
    state = witness_a.kept()
    assert state["sth"] == kept  # the kept head stays: the next run alarms again
    assert [(a["kind"], a["served"]) for a in state["alerts"]] == [("rewrite", served)]
    assert witness_a(desk).code == 1


def test_a_head_re_signed_at_the_same_size_is_a_fork(desk, make_witness):
    witness_a = make_witness()
    kept = latest_head(desk.app)
    assert witness_a(desk).code == 0
    rewrite_entry(desk.app, 3)
    with rogue_dba(desk.app) as connection:
        connection.execute(sa.delete(AuditTreeHead))
    served = sign_head(desk.app)
    assert served["tree_size"] == kept["tree_size"] and served["root_hash"] != kept["root_hash"]
    run = witness_a(desk)
    assert run.code == 1 and "ALERT fork" in run.output, run.output
    assert "two different trees" in run.output


def test_a_fork_served_to_two_witnesses(desk, other_app, make_witness):
    # Two servers with the same key and different histories: each witness alone sees a
    # well-signed, growing log; a witness shown both catches the fork.
    other = Desk(other_app, "", token_for(other_app))
    seed(other_app, tree_size(desk.app) - tree_size(other_app), start_at=None)
    assert tree_size(other_app) == tree_size(desk.app)
    sign_head(other_app)
    assert latest_head(other_app)["root_hash"] != latest_head(desk.app)["root_hash"]
    witness_a, witness_b = make_witness("a"), make_witness("b")
    with serving(other_app) as other_url:
        other.url = other_url
        assert witness_a(desk).code == 0
        assert witness_b(other).code == 0
        same_size = witness_a(other)
        assert same_size.code == 1 and "ALERT fork" in same_size.output, same_size.output
        seed(other_app, 4)
        sign_head(other_app)
        larger = witness_a(other)
        assert larger.code == 1, larger.output
        assert "not consistent" in larger.output and "fork" in larger.output
        assert witness_b(other).code == 0  # B's own history still only grew
        assert witness_b(desk).code == 1  # and B, shown A's desk, alarms too


def test_a_rollback_is_caught(desk, make_witness):
    witness_a = make_witness()
    before = latest_head(desk.app)
    seed(desk.app, 5)
    sign_head(desk.app)
    assert witness_a(desk).code == 0
    roll_back_to(desk.app, before["tree_size"])
    assert latest_head(desk.app) == before
    run = witness_a(desk)
    assert run.code == 1 and "ALERT rollback" in run.output, run.output
    assert f"tree of {before['tree_size']} entries, smaller than" in run.output
    with rogue_dba(desk.app) as connection:
        connection.execute(sa.delete(AuditTreeHead))
    gone = witness_a(desk)
    assert (
        gone.code == 1 and "ALERT rollback" in gone.output and "no signed tree head" in gone.output
    )


@pytest.mark.parametrize(
    "change",
    [
        "UPDATE audit_tree_heads SET root_hash = '{zeros}' WHERE tree_size = {size}",
        "UPDATE audit_tree_heads SET timestamp = '2020-01-01T00:00:00.000000Z' "
        "WHERE tree_size = {size}",
        "UPDATE audit_tree_heads SET signature = (SELECT signature FROM audit_tree_heads "
        "WHERE tree_size < {size} ORDER BY tree_size DESC LIMIT 1) WHERE tree_size = {size}",
    ],
    ids=["root", "timestamp", "signature"],
)
def test_a_forged_head_is_caught(desk, make_witness, change):
    witness_a = make_witness()
    assert witness_a(desk).code == 0
    seed(desk.app, 2)
    size = sign_head(desk.app)["tree_size"]
    with rogue_dba(desk.app) as connection:
        connection.exec_driver_sql(change.format(zeros="0" * 64, size=size))
    run = witness_a(desk)
    assert run.code == 1, run.output
    assert "ALERT forged head" in run.output and "does not verify" in run.output
    # A witness that never saw this desk before refuses the forged head too, and pins nothing.
    fresh = make_witness("fresh")
    first = fresh(desk)
    assert first.code == 1 and "ALERT forged head" in first.output, first.output
    assert not fresh.state.exists()


def _new_key_env() -> str:
    raw = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return base64.b64encode(raw).decode()


def test_a_head_signed_by_another_key_is_refused(desk, make_witness, monkeypatch):
    witness_a = make_witness()
    pinned = signing.public_key(desk.app).key_id
    assert witness_a(desk).code == 0
    desk.app.extensions.pop("desk_signing_key")
    monkeypatch.setenv("DESK_SIGNING_KEY", _new_key_env())
    seed(desk.app, 2)
    sign_head(desk.app)
    run = witness_a(desk)
    assert run.code == 1 and "ALERT forged head" in run.output, run.output
    assert f"not by the pinned key {pinned[:16]}" in run.output


def test_key_given_as_pem_is_pinned_and_a_different_one_refused(desk, tmp_path):
    # --key is the CLI's way to pin a key received out of band (the script has it built in).
    witness_a = Witness("cli", tmp_path)
    ours = tmp_path / "desk.pem"
    ours.write_text(signing.public_key(desk.app).pem)
    other = tmp_path / "other.pem"
    other.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    wrong_first = witness_a(desk, "--key", str(other))
    assert wrong_first.code == 1 and "ALERT forged head" in wrong_first.output
    assert not witness_a.state.exists()
    assert witness_a(desk, "--key", str(ours)).code == 0
    changed = witness_a(desk, "--key", str(other))
    assert changed.code == 1 and "ALERT key changed" in changed.output, changed.output
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    assert witness_a(desk, "--key", str(not_pem)).code == 2


def test_the_downloaded_script_refuses_a_desk_with_another_key(desk, other_app, tmp_path):
    # The auditor's copy carries the key it was downloaded with: a desk (or an impostor)
    # signing with any other key is refused on the very first run.
    witness_a = Witness("script", tmp_path)
    witness_a.download(desk)
    other_app.config["DESK_SIGNING_KEY"] = _new_key_env()
    impostor = Desk(other_app, "", token_for(other_app))
    seed(other_app, 3)
    sign_head(other_app)
    with serving(other_app) as url:
        impostor.url = url
        run = witness_a(impostor)
    assert run.code == 1 and "ALERT forged head" in run.output, run.output
    assert not witness_a.state.exists()


# --- when nothing can be checked: exit 2, a plain message, nothing changed -----------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_desk_is_exit_2_not_an_alarm(desk, make_witness):
    witness_a = make_witness()
    assert witness_a(desk).code == 0
    before = witness_a.state.read_bytes()
    run = witness_a(desk, url=f"http://127.0.0.1:{_closed_port()}")
    assert run.code == 2 and run.output.startswith("error: cannot reach the desk"), run.output
    assert "Traceback" not in run.output
    assert witness_a.state.read_bytes() == before


@pytest.mark.parametrize("token", ["desk_not-a-token", ""])
def test_a_refused_token_is_exit_2(desk, make_witness, token):
    witness_a = make_witness()
    witness_a.prepare(desk)  # downloaded with a good token
    run = witness_a(Desk(desk.app, desk.url, token))
    assert run.code == 2 and "refused the token (401" in run.output, run.output
    assert "Traceback" not in run.output


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/", "file:///etc/passwd", "127.0.0.1:8000", "http://u:p@127.0.0.1/"]
)
def test_only_http_and_https_addresses(desk, make_witness, url):
    run = make_witness()(desk, url=url)
    assert run.code == 2 and "--url must be the desk's" in run.output, run.output


def test_a_desk_that_does_not_answer_times_out(tmp_path):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        code, line = witness_script.witness(
            f"http://127.0.0.1:{silent.getsockname()[1]}",
            str(tmp_path / "state.json"),
            token="desk_x",
            timeout=0.5,
        )
    assert code == 2 and "cannot reach the desk" in line and "timed out" in line


def test_a_damaged_state_file_is_exit_2(desk, make_witness):
    witness_a = make_witness()
    assert witness_a(desk).code == 0
    state = witness_a.kept()
    state["sth"]["root_hash"] = "1" * 64
    witness_a.state.write_text(json.dumps(state))
    run = witness_a(desk)
    assert run.code == 2 and "was altered" in run.output, run.output


class _Canned(BaseHTTPRequestHandler):
    """Answers every GET with one canned response (a server that is not a working desk)."""

    answer: tuple[int, bytes, dict] = (200, b"", {})

    def do_GET(self):  # noqa: N802 - the name http.server calls
        status, body, headers = self.answer
        self.send_response(status)
        for name, value in {"Content-Length": str(len(body)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ((200, b"<html>a login page</html>", {}), "is not JSON"),
        ((500, b'{"error": {"code": "error", "message": "db down"}}', {}), "answered 500"),
        ((302, b"", {"Location": "https://elsewhere.example/"}), "redirected to https://"),
        ((403, b'{"error": {"code": "forbidden", "message": "no"}}', {}), "refused the token"),
    ],
    ids=["html", "500", "redirect", "403"],
)
def test_a_server_that_does_not_answer_like_a_desk_is_exit_2(make_witness, answer, said):
    handler = type("Handler", (_Canned,), {"answer": answer})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        run = make_witness()(Desk(None, url, "desk_token"))
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert run.code == 2 and said in run.output, run.output
    assert "Traceback" not in run.output


# --- the script itself ----------------------------------------------------------------------


def _section(text: str, begin: str, end: str) -> str:
    start = text.index(begin)
    return text[start : text.index(end, start)]


def test_the_served_script_is_standalone_with_the_desks_key(desk, client):
    response = client.get(
        "/api/v1/audit/witness.py", headers={"Authorization": f"Bearer {desk.token}"}
    )
    assert response.status_code == 200
    assert response.mimetype == "text/x-python"
    assert response.headers["Content-Disposition"] == 'attachment; filename="witness.py"'
    text = response.get_data(as_text=True)
    public = signing.public_key(desk.app)
    assert f'PINNED_PUBLIC_KEY_HEX = "{public.raw.hex()}"' in text
    assert public.key_id in text
    # The desk's own copy has no key in it; everything else is the same code.
    source = witness.SCRIPT.read_text("utf-8")
    assert 'PINNED_PUBLIC_KEY_HEX = ""  # ---- DESK KEY\n' in source
    assert len(text.splitlines()) == len(source.splitlines())
    # Standard library only, and the grammar of Python 3.8 (what older hosts still run).
    imported = set()
    for node in ast.walk(ast.parse(text, feature_version=(3, 8))):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
    assert client.get("/api/v1/audit/witness.py").status_code == 401


def test_the_scripts_merkle_and_ed25519_code_is_the_desks_own():
    script = Path(witness_script.__file__).read_text("utf-8")
    merkle_src = Path(merkle.__file__).read_text("utf-8")
    begin, end = "# ---- BEGIN VERIFIER", "# ---- END VERIFIER"
    assert _section(script, begin, end) == _section(merkle_src, begin, end)
    verifier = Path(verifier_script.__file__).read_text("utf-8")
    begin, end = "# --- Ed25519 verification", "\n# --"  # to the next section header
    assert _section(script, begin, end) == _section(verifier, begin, end)


def test_the_page_links_the_script_for_signed_in_people(desk, client, login_as):
    login_as("auditor")
    page = client.get("/audit/checkpoints").get_data(as_text=True)
    assert 'href="/audit/witness.py"' in page
    download = client.get("/audit/witness.py")
    assert download.status_code == 200 and download.mimetype == "text/x-python"
    assert signing.public_key(desk.app).raw.hex() in download.get_data(as_text=True)


def test_the_api_describes_the_witness_script(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert "text/x-python" in paths["/audit/witness.py"]["get"]["responses"]["200"]["content"]


def test_the_witness_never_writes_to_the_trail(desk, make_witness):
    # Reading heads and proofs is not an event: a witness every minute must not grow the log.
    size = tree_size(desk.app)
    assert make_witness()(desk).code == 0
    assert tree_size(desk.app) == size
    with desk.app.app_context(), session_scope(write=False) as session:
        assert session.exec(select(AuditTreeHead)).all()
