"""axe-core in the browser tests: run it in a page, report what it found in a readable way.

`make axe-deps` (part of `make test`) installs the pinned axe-core into build/axe. The desk's
CSP forbids inline script, so a <script> tag with axe's text would be refused; Playwright's
`evaluate` runs in the page through the DevTools protocol, which the CSP does not govern, so the
pages are checked exactly as served (no `bypass_csp`: a style the CSP blocks stays blocked).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

AXE_JS = Path(__file__).resolve().parent.parent / "build/axe/node_modules/axe-core/axe.min.js"
# WCAG 2.0, 2.1 and 2.2 at levels A and AA, plus axe's best practices (landmarks, headings…).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


@cache
def axe_source() -> str:
    """axe.min.js, or a failure saying how to install it."""
    if not AXE_JS.exists():
        pytest.fail(f"axe-core is missing ({AXE_JS}): `make axe-deps` (part of `make test`)")
    return AXE_JS.read_text(encoding="utf-8")


def axe_violations(page) -> list[dict]:
    """axe-core's violations on the page as it is now (injected once per document)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(f"() => {{ {axe_source()}\n}}")
        page.evaluate("() => { window.axe = axe; }")
    return page.evaluate(
        """(tags) => axe.run(document, {runOnly: {type: "tag", values: tags},
                                        resultTypes: ["violations"]})
                       .then((result) => result.violations.map((v) => ({
                           id: v.id, impact: v.impact, help: v.help,
                           nodes: v.nodes.map((n) => ({target: n.target.join(" "),
                                                       summary: n.failureSummary}))})))""",
        AXE_TAGS,
    )


def describe(violations: list[dict], limit: int = 4) -> str:
    """One line per rule (id, impact, help) and its first few elements with axe's summary."""
    lines = []
    for violation in violations:
        lines.append(f"  {violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"][:limit]:
            summary = " ".join((node["summary"] or "").split())
            lines.append(f"      {node['target']}  — {summary[:240]}")
        if len(violation["nodes"]) > limit:
            lines.append(f"      … and {len(violation['nodes']) - limit} more")
    return "\n".join(lines)


def horizontal_overflow(page) -> dict | None:
    """None when nothing is out of sight sideways; else the page's widths and the culprits.

    Culprits: elements reaching past the window (the page scrolls sideways), and boxes that cut
    or scroll their content sideways (a table hiding columns) — except a block deliberately
    scrollable by keyboard (`pre[tabindex]`) and visually hidden text (.sr-only, clipped).
    """
    return page.evaluate(
        """() => {
            const width = window.innerWidth, doc = document.documentElement;
            const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
                (el.dataset.testid ? `[data-testid=${el.dataset.testid}]` : "") +
                (typeof el.className === "string" && el.className.trim()
                    ? "." + el.className.trim().split(/\\s+/).join(".") : "");
            const all = [...document.querySelectorAll("body *")];
            const past = all
                .filter((el) => el.getBoundingClientRect().right > width + 0.5)
                .filter((el) => !el.parentElement ||
                        el.parentElement.getBoundingClientRect().right <= width + 0.5)
                .map((el) => `${name(el)} ends at ${Math.round(el.getBoundingClientRect().right)}`);
            const cut = all
                .filter((el) => !el.matches("pre[tabindex]") && !el.closest(".sr-only"))
                .filter((el) => getComputedStyle(el).clipPath === "none")
                .filter((el) => getComputedStyle(el).overflowX !== "visible")
                .filter((el) => el.scrollWidth > el.clientWidth + 1)
                .map((el) => `${name(el)} hides ${el.scrollWidth - el.clientWidth} px sideways`);
            if (doc.scrollWidth <= width && !cut.length) return null;
            return {scrollWidth: doc.scrollWidth, innerWidth: width,
                    culprits: [...past, ...cut].slice(0, 8)};
        }"""
    )
