"""schemathesis hooks: an upload carries a real CSV, so the workflow can go on.

`format: binary` tells schemathesis nothing about the content (a UTF-8 CSV with an 'email'
header), so it sends PNGs and random bytes, which the server answers 422 and the stateful phase
never gets a batch. Any bytes are schema-valid, so swapping bytes for CSV bytes never changes a
case's validity: do it whenever the file is bytes (a negative case that made `file` a number or
an object keeps it). Do not key this on case.meta.generation.mode: in the stateful phase the
hook sees every case as "negative".
"""

import schemathesis

CSV = b"email\nperson@example.com\n"


@schemathesis.hook("map_case").apply_to(method="POST", path="/api/v1/batches")
def valid_csv(ctx, case):
    if isinstance(case.body, dict) and isinstance(case.body.get("file"), (bytes, bytearray)):
        case.body["file"] = CSV
    return case
