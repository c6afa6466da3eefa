"""The transparency log at scale on SQLite: proofs at 10 million entries, and the evidence pack
of a 10,000-subject batch with 1 million and with 10 million entries of history.

Method (stated with the figures):
- the trail is seeded in bulk (entries and their tree nodes, as `seed_sqlite` writes them);
  the batch (bench_evidence._batch: 10,000 subjects, its Heap request, its audit history through
  `audit.record`) is written after the first million;
- proofs: `tree.inclusion` and `tree.consistency` for 200 random entries / earlier sizes each
  against the tree of 10,000,000+ entries, through the database (what the API endpoints call);
  the figure is the slowest of the 200;
- pack: `evidence_pack` drained completely (a head is signed on demand), then its own
  `verify.py` run with `python3 -I` on the unzipped files.
"""

from __future__ import annotations

import io
import random
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from tests.benchmarks.bench_audit import bench_app, seed_sqlite
from tests.benchmarks.bench_evidence import _batch
from webapp.db import session_scope
from webapp.evidence.pack import evidence_pack
from webapp.trail import tree

HISTORY_SMALL, HISTORY_LARGE = 1_000_000, 10_000_000
PROOFS = 200


def _pack(app, batch_id: int, folder: Path) -> tuple[float, int, float]:
    """(seconds to issue, bytes, seconds for its verify.py)."""
    started = time.perf_counter()
    data = b"".join(evidence_pack(app, batch_id))
    issue_seconds = time.perf_counter() - started
    target = folder / f"pack-{len(data)}"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(target)
    started = time.perf_counter()
    checked = subprocess.run(
        [sys.executable, "-I", "verify.py"], cwd=target, capture_output=True, text=True, timeout=120
    )
    verify_seconds = time.perf_counter() - started
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return issue_seconds, len(data), verify_seconds


def _proofs(app) -> tuple[float, float, int]:
    """The slowest inclusion and consistency proof of PROOFS each, and the tree size."""
    rng = random.Random(9162)
    slowest_inclusion = slowest_consistency = 0.0
    with app.app_context(), session_scope(write=False) as session:
        size = tree.size(session)
        for _ in range(PROOFS):
            started = time.perf_counter()
            tree.inclusion(session, rng.randrange(1, size + 1), size)
            slowest_inclusion = max(slowest_inclusion, time.perf_counter() - started)
            started = time.perf_counter()
            tree.consistency(session, rng.randrange(1, size + 1), size)
            slowest_consistency = max(slowest_consistency, time.perf_counter() - started)
    return slowest_inclusion, slowest_consistency, size


def run() -> list[dict]:
    """Proof times at 10M entries; pack size, issue and verify time at 1M and 10M."""
    with tempfile.TemporaryDirectory() as tmp, bench_app(Path(tmp)) as app:
        db = Path(tmp) / "bench.db"
        seed_sqlite(db, HISTORY_SMALL)
        batch_id = _batch(app)
        small = _pack(app, batch_id, Path(tmp))
        seed_sqlite(db, HISTORY_LARGE - HISTORY_SMALL)
        large = _pack(app, batch_id, Path(tmp))
        inclusion, consistency, size = _proofs(app)
    figures = [
        {
            "name": f"inclusion proof at {size:,} entries (slowest of {PROOFS})",
            "value": inclusion * 1000,
            "unit": "ms",
            "limit": 50,
            "ok": inclusion <= 0.050,
        },
        {
            "name": f"consistency proof at {size:,} entries (slowest of {PROOFS})",
            "value": consistency * 1000,
            "unit": "ms",
            "limit": 50,
            "ok": consistency <= 0.050,
        },
    ]
    for history, (issue, size_bytes, verify) in (("1M", small), ("10M", large)):
        figures += [
            {
                "name": f"evidence pack of a 10,000-subject batch, {history} entries of history",
                "value": issue,
                "unit": "s",
                "limit": 1,
                "ok": issue <= 1,
                "note": f"{size_bytes / 1024:.0f} KiB",
            },
            {
                "name": f"that pack's size ({history} history)",
                "value": size_bytes / 1024,
                "unit": "KiB",
                "limit": 200,
                "ok": size_bytes <= 200 * 1024,
            },
            {
                "name": f"that pack's verify.py ({history} history)",
                "value": verify,
                "unit": "s",
                "limit": 2,
                "ok": verify <= 2,
            },
        ]
    return figures
