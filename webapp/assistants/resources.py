"""The reports an assistant may read: the deadline report and a batch's masked report (CSV).

The same CSVs the pages and the REST API hand out (evidence/reports.py): the deadline report
carries fingerprints and batch references only, the batch report is the masked one evidence
packs carry (a***@b***.com, 16-hex-digit fingerprints). Reading a batch's report is audited as
the download it is.
"""

from __future__ import annotations

import re

import mcp_types as types
from flask import Flask

from webapp.accounts.access import Principal
from webapp.erasure.batches import BatchNotFound
from webapp.evidence import reports
from webapp.evidence.downloads import record_download
from webapp.models import MAX_ID

DEADLINES_URI = "desk://deadlines/report.csv"
BATCH_REPORT_TEMPLATE = "desk://batches/{batch_id}/report.csv"
_BATCH_REPORT = re.compile(r"desk://batches/([1-9][0-9]{0,9})/report\.csv")
CSV = "text/csv"


class ResourceMissing(Exception):
    """No such resource; the message is for the caller."""


def listed() -> list[types.Resource]:
    return [
        types.Resource(
            name="deadline_report",
            title="Deadlines at risk (CSV)",
            uri=DEADLINES_URI,
            mime_type=CSV,
            description="Every deletion overdue or due within 7 days, earliest first: urgency, "
            "days left or overdue, due and received dates, batch, row, kind, fingerprint, "
            "status. No identifiers.",
        )
    ]


def templates() -> list[types.ResourceTemplate]:
    return [
        types.ResourceTemplate(
            name="batch_report",
            title="A batch's report, masked (CSV)",
            uri_template=BATCH_REPORT_TEMPLATE,
            mime_type=CSV,
            description="Every row of a deletion batch with its classification, deadline, "
            "Heap deletion_request_ids and status; identifiers masked as in evidence packs.",
        )
    ]


def kind_of(uri: str) -> str:
    """`deadline_report`, `batch_report` or `unknown` (what the audit entry names)."""
    if uri == DEADLINES_URI:
        return "deadline_report"
    return "batch_report" if _BATCH_REPORT.fullmatch(uri) else "unknown"


def read(app: Flask, caller: Principal, uri: str) -> tuple[str, int | None]:
    """The resource's CSV text and the batch it is about (if any), or ResourceMissing."""
    if uri == DEADLINES_URI:
        return "".join(reports.deadline_report(app)), None
    found = _BATCH_REPORT.fullmatch(uri)
    if found is None or int(found.group(1)) > MAX_ID:
        raise ResourceMissing(
            f"The desk has {DEADLINES_URI} and {BATCH_REPORT_TEMPLATE} (a batch id from "
            "list_batches), nothing else."
        )
    batch_id = int(found.group(1))
    try:
        text = "".join(reports.batch_report(app, batch_id, masked=True))
    except BatchNotFound as error:
        raise ResourceMissing(str(error)) from None
    record_download(
        actor=caller.email, kind="report.csv", target_type="batch", target_id=batch_id, masked=True
    )
    return text, batch_id
