"""A batch's manifest: exactly which subjects an approval lets the desk send to Heap.

The manifest is the count of the subjects to send and the SHA-256 of their fingerprints, sorted
and joined by line feeds (UTF-8, no trailing line feed). The approver sees and approves it; the
submission job recomputes it from the rows it is about to plan and sends only when the two agree
(DESIGN.md, "Four-eyes on exactly what is sent").
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def manifest_sha256(fingerprints: Iterable[str]) -> str:
    """Hex SHA-256 of the sorted fingerprints, one per line."""
    return hashlib.sha256("\n".join(sorted(fingerprints)).encode("utf-8")).hexdigest()
