"""A client generated from the document works: openapi-python-client writes one from the live
desk's /api/v1/openapi.json, and with it one officer uploads a list, a second approves it, and
the evidence pack is downloaded once the sandbox standing in for Heap has completed it.

The generator runs without its post hooks (ruff formatting), so it is quick and offline; any
warning it gives (a schema it cannot read, an operation it leaves out) fails the test, since
each is a part of the document a client cannot use.
"""

from __future__ import annotations

import importlib
import io
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from batch_fixtures import *  # noqa: F401,F403
from batch_fixtures import Scheduler
from evidence_fixtures import signing_key_env  # noqa: F401

GENERATOR = str(Path(sys.executable).parent / "openapi-python-client")
PACKAGE = "desk_client"
# Downloads are declared with their own media types; the generator reads only
# application/octet-stream as a file, so the client is told to read these as files too.
CONFIG = f"""\
post_hooks: []
project_name_override: desk-client
package_name_override: {PACKAGE}
content_type_overrides:
  application/zip: application/octet-stream
  application/pdf: application/octet-stream
  application/x-ndjson: application/octet-stream
"""


@pytest.fixture
def desk_client(live_server, tmp_path):
    """The package openapi-python-client generates from the live desk's document, imported."""
    config = tmp_path / "client.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    result = subprocess.run(
        [
            GENERATOR,
            "generate",
            "--url",
            f"{live_server}/api/v1/openapi.json",
            "--config",
            str(config),
            "--meta",
            "none",
            "--output-path",
            str(tmp_path / PACKAGE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Warning" not in output and "WARNING" not in output, output
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


@pytest.mark.timeout(180)
def test_a_generated_client_uploads_approves_and_downloads_the_evidence(
    app,
    live_server,
    sandbox,
    sandbox_clock,
    make_env,
    api_token,
    desk_client,
    signing_key_env,  # noqa: F811 - after `app`: PostgreSQL installs must set a key (else 503)
):
    models = importlib.import_module(f"{PACKAGE}.models")
    types = importlib.import_module(f"{PACKAGE}.types")

    def api(operation_id):
        return importlib.import_module(f"{PACKAGE}.api.default.{operation_id}")

    env_id = make_env(
        "Main Production", base_url=sandbox.url, app_id=sandbox.app_id, api_key=sandbox.api_key
    )

    def officer():
        return desk_client.AuthenticatedClient(
            base_url=f"{live_server}/api/v1", token=api_token("officer")
        )

    uploader, approver = officer(), officer()

    created = api("upload_batch").sync(
        client=uploader,
        body=models.UploadForm(
            environment_id=env_id,
            file="identity\nann@example.org\nbob@example.org\n",
            reference="DSR-17",
        ),
    )
    assert isinstance(created, models.BatchCreated), created
    assert (created.counts.valid, created.state) == (2, models.BatchState.AWAITING_APPROVAL)

    approved = api("approve_batch").sync(
        created.id,
        client=approver,
        body=models.ApproveBody(manifest_sha256=created.manifest.sha256),
    )
    assert isinstance(approved, models.BatchDetail), approved
    assert approved.state == models.BatchState.APPROVED

    scheduler = Scheduler(app, sandbox_clock)
    scheduler.start()
    try:
        deadline = time.monotonic() + 60
        while api("get_batch").sync(created.id, client=uploader).state != "complete":
            assert time.monotonic() < deadline, "the batch did not complete"
            time.sleep(0.2)
    finally:
        scheduler.done.set()
        scheduler.join()

    found = api("lookup_subject").sync(
        client=uploader, subject=models.LookupSubjectSubject(identity="ann@example.org")
    )
    assert isinstance(found, models.LookupResult) and found.deleted

    pack = api("get_batch_evidence").sync(created.id, client=uploader)
    assert isinstance(pack, types.File), pack
    with zipfile.ZipFile(io.BytesIO(pack.payload.read())) as archive:
        assert {"certificate.pdf", "report.csv", "verify.py", "sth.json"} <= set(archive.namelist())
