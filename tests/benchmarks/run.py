"""Run every benchmark (tests/benchmarks/bench_*.py), print a table, write bench-results/.

Each module exposes `run() -> list[dict]`, one dict per figure:
{"name", "value", "unit", "limit", "ok"} (plus optional "baseline" and "note").
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def machine() -> str:
    """One line naming the machine the figures come from."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cpu}, {os.cpu_count()} cores{memory}, Python {platform.python_version()}"


def main(selected: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    modules = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if selected:
        modules = [m for m in modules if any(s in m for s in selected)]
    results = []
    for name in modules:
        module = importlib.import_module(f"tests.benchmarks.{name}")
        print(f"== {name}", flush=True)
        for figure in module.run():
            figure["module"] = name
            results.append(figure)
            mark = "ok  " if figure["ok"] else "FAIL"
            print(
                f"  {mark} {figure['name']}: {figure['value']:.3f} {figure['unit']} "
                f"(limit {figure['limit']} {figure['unit']})"
                + (f" — {figure['note']}" if figure.get("note") else ""),
                flush=True,
            )
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    report = {"at": datetime.now(UTC).isoformat(), "machine": machine(), "results": results}
    (out / "latest.json").write_text(json.dumps(report, indent=2))
    print(f"machine: {report['machine']}")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
