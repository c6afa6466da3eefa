"""The API contract, fuzzed: schemathesis against a live desk, as admin, officer and auditor.

The desk is seeded with an environment on the sandbox, batches awaiting approval, complete and
rejected, and a correction, so the generated cases and the stateful phase (which follows the
document's links) meet real objects. Every check runs: `--checks all` on the command line, as
anyone would run it, and tests/api/schemathesis.toml holds only the seed and the bounds (no
expected statuses of its own, no check switched off): the document states every rule the desk
checks, and a refusal only the stored state can decide is a 404 or 409.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from corrections_helpers import paced  # noqa: F401
from evidence_fixtures import _csv, finish_batch, signing_key_env  # noqa: F401
from workflow_factories import make_environment

from webapp.db import session_scope
from webapp.erasure import batches
from webapp.heap import HeapClient

HERE = Path(__file__).resolve().parent
ST = str(Path(sys.executable).parent / "st")
# The admin last: the environments its run registers (pointing at Heap, which tests cannot
# reach) would otherwise make every later correction a slow, failing send.
ROLES = ("officer", "auditor", "admin")


def seed_desk(app, client, sandbox, make_user, api_token) -> dict:
    """An environment on the sandbox; batches complete, awaiting approval and rejected; and a
    correction."""
    env_id = make_environment(app, sandbox)
    complete = finish_batch(app, env_id, make_user, _csv(), reference="DSR-ST-1").id
    uploader, reviewer = make_user("officer"), make_user("officer")
    ids = {}
    for name, line in (("awaiting", "ann@example.org"), ("rejected", "bob@example.org")):
        with app.app_context(), session_scope(write=True) as session:
            batch, _ = batches.create_batch(
                session,
                actor=uploader,
                environment_id=env_id,
                data=f"email\n{line}\n".encode(),
                filename="list.csv",
                reference=f"DSR-ST-{name}",
            )
            ids[name] = batch.id
    with app.app_context(), session_scope(write=True) as session:
        batches.reject(session, actor=reviewer, batch_id=ids["rejected"], reason="Wrong list")
    response = client.post(
        "/api/v1/corrections/identify",
        json={"environment_id": env_id, "user_id": "12", "identity": "ann"},
        headers={"Authorization": f"Bearer {api_token('officer')}"},
    )
    assert response.status_code == 201, response.get_json()
    return {"environment": env_id, "complete": complete, **ids, "correction": response.json["id"]}


def run_schemathesis(url: str, token: str, workdir: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DESK_ST_TOKEN": token,
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [
            ST,
            "--no-color",
            "--config-file",
            str(HERE / "schemathesis.toml"),
            "run",
            "--checks",
            "all",
            url,
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.timeout(600)
def test_schemathesis_finds_nothing_as_any_role(
    app,
    client,
    live_server,
    sandbox,
    paced,  # noqa: F811 - corrections wait on the sandbox's clock, not the wall's
    make_user,
    api_token,
    tmp_path,
    signing_key_env,  # noqa: F811 - after `app`, or the key is lost
    monkeypatch,
):
    # The environments the fuzzer registers point at Heap itself, which no test may reach:
    # a correction sent there fails at once instead of retrying with backoff (4 tries), which
    # would spend minutes on answers the run already has.
    monkeypatch.setitem(HeapClient.__init__.__kwdefaults__, "max_attempts", 1)
    seed_desk(app, client, sandbox, make_user, api_token)
    url = f"{live_server}/api/v1/openapi.json"
    reports = {}
    for role in ROLES:
        workdir = tmp_path / role
        workdir.mkdir()
        result = run_schemathesis(url, api_token(role), workdir)
        reports[role] = result
        output = result.stdout + result.stderr
        (Path(tmp_path) / f"st-{role}.txt").write_text(output, encoding="utf-8")
    problems = {
        role: (result.stdout + result.stderr)[-6000:]
        for role, result in reports.items()
        if result.returncode != 0
        or not re.search(r"Test cases:\n\s+\d+ generated", result.stdout)
        or re.search(r"^(FAILURES|ERRORS)\b|\d+ (failures?|errors?)\b", result.stdout, re.M)
    }
    report = "\n\n".join(f"=== as {role} ===\n{text}" for role, text in problems.items())
    assert not problems, report
