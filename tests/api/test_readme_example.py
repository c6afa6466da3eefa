"""The README's curl example, run as written against a live desk and the sandbox standing in for
Heap: upload, approve (another officer), wait for completion, download the evidence."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from batch_fixtures import *  # noqa: F401,F403
from batch_fixtures import Scheduler
from evidence_fixtures import signing_key_env  # noqa: F401

README = Path(__file__).resolve().parents[2] / "README.md"
DESK_CLI = str(Path(sys.executable).parent / "desk")


def readme_example() -> str:
    """The shell block after the `<!-- api-example -->` marker."""
    text = README.read_text(encoding="utf-8")
    found = re.search(r"<!-- api-example -->\n```sh\n(.*?)```", text, flags=re.S)
    assert found, "README.md lost its API example"
    return found.group(1)


@pytest.mark.timeout(120)
def test_the_readme_example_runs_from_upload_to_evidence(
    app,
    live_server,
    sandbox,
    sandbox_clock,
    make_user,
    make_env,
    desk_env,
    tmp_path,
    signing_key_env,  # noqa: F811 - after `app`: PostgreSQL installs must set a key (else 503)
):
    make_user("officer", email="ada@example.org")
    make_user("officer", email="ben@example.org")
    env_id = make_env(
        "Main Production", base_url=sandbox.url, app_id=sandbox.app_id, api_key=sandbox.api_key
    )
    assert env_id == 1  # the example names environment 1
    script = (
        readme_example()
        .replace("DESK=http://127.0.0.1:8000", f"DESK={live_server}")
        .replace(".venv/bin/desk", DESK_CLI)
        .replace("sleep 5", "sleep 0.2")
    )
    scheduler = Scheduler(app, sandbox_clock)
    scheduler.start()
    try:
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            env={**desk_env, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=90,
        )
    finally:
        scheduler.done.set()
        scheduler.join()
    assert result.returncode == 0, result.stderr
    assert '"state":"approved"' in result.stdout.replace(" ", "")  # step 2 answered
    (pack,) = tmp_path.glob("batch-*-evidence.zip")
    with zipfile.ZipFile(pack) as archive:
        assert {"certificate.pdf", "report.csv", "verify.py", "sth.json"} <= set(archive.namelist())
