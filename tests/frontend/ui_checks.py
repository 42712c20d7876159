"""Checks every browser test of the consoles can reuse: axe-core and screenshots.

``assert_accessible(page, name)`` runs axe-core (npm, ``frontend/node_modules/axe-core``,
injected from disk: nothing is fetched) on the page as it is, WCAG 2.0/2.1/2.2 A and AA rules,
and fails on any *serious* or *critical* violation, naming the rule and the offending nodes.

``screenshots(page, name)`` writes ``tests/frontend/screenshots/<name>-390x844.png`` and
``<name>-1440x900.png`` (a phone and a desktop), the folder the README names, so a reviewer can
look at every main screen without running anything. The page's viewport is restored after.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
AXE = REPO / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
VIEWPORTS = ((390, 844), (1440, 900))
# Only the WCAG rule sets: axe's "best-practice" rules are advice, not the AA bar.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
BLOCKING = ("serious", "critical")


def axe_violations(page: Any, include: str | None = None) -> list[dict[str, Any]]:
    """axe-core's violations on the page (or in the element matching ``include``)."""
    if not AXE.is_file():
        raise AssertionError(f"{AXE} is missing: run `cd frontend && npm ci`")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """async ([include, tags]) => {
            const r = await axe.run(include ? document.querySelector(include) : document,
                                    {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => ({target: n.target, summary: n.failureSummary}))}));
        }""",
        [include, WCAG_TAGS],
    )
    return list(result)


def assert_accessible(page: Any, name: str = "", include: str | None = None) -> None:
    """Fail if axe-core finds a serious or critical WCAG A/AA violation on the page."""
    bad = [v for v in axe_violations(page, include) if v["impact"] in BLOCKING]
    if bad:
        lines = [f"{name or page.url}: {len(bad)} serious/critical axe violation(s)"]
        for v in bad:
            lines.append(f"- {v['id']} ({v['impact']}): {v['help']}")
            for node in v["nodes"][:5]:
                lines.append(f"    {json.dumps(node['target'])}: {node['summary']}")
        raise AssertionError("\n".join(lines))


def screenshots(page: Any, name: str, full_page: bool = True) -> list[Path]:
    """The page at 390x844 and at 1440x900, as ``screenshots/<name>-<w>x<h>.png``: the whole
    page from its top (``full_page``), so a long phone page is seen entire."""
    SCREENSHOTS.mkdir(exist_ok=True)
    before = page.viewport_size
    written: list[Path] = []
    try:
        for w, h in VIEWPORTS:
            page.set_viewport_size({"width": w, "height": h})
            # Let the layout (and Leaflet, which listens to resize) settle before the shot.
            page.evaluate("() => new Promise(r => requestAnimationFrame(() => setTimeout(r, 150)))")
            path = SCREENSHOTS / f"{name}-{w}x{h}.png"
            page.screenshot(path=str(path), animations="disabled", full_page=full_page)
            written.append(path)
    finally:
        if before:
            page.set_viewport_size(before)
    return written


def overflows_sideways(page: Any) -> bool:
    """True if the page scrolls sideways (wider content than the viewport)."""
    return bool(
        page.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth")
    )
