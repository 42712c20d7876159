"""Checks every browser test of the consoles can reuse: axe-core and screenshots.

``assert_accessible(page, name)`` runs axe-core (npm, ``frontend/node_modules/axe-core``,
injected from disk: nothing is fetched) on the page as it is, WCAG 2.0/2.1/2.2 A and AA rules,
and fails on any *serious* or *critical* violation, naming the rule and the offending nodes.

``screenshots(page, name)`` writes ``tests/frontend/screenshots/<name>-390x844.png`` and
``<name>-1440x900.png`` (a phone and a desktop), the folder the README names, so a reviewer can
look at every main screen without running anything. The page's viewport is restored after.
A file is rewritten only when its picture changed (``screenshot_files.write_if_changed``):
the fields that show the clock and the elements a test names as ``volatile`` (a generated
e-mail, a server timestamp) are left out of that comparison, so a run that changes nothing
visible leaves the committed PNGs byte-identical.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.frontend.screenshot_files import Box, write_if_changed

REPO = Path(__file__).resolve().parents[2]
AXE = REPO / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
VIEWPORTS = ((390, 844), (1440, 900))
# Let the layout settle after a viewport change: Leaflet resizes its map at the frame after the
# resize event but redraws its vector layers (routes, zones, markers' lines) only at the
# "moveend" it debounces 200 ms later; a shot before that (150 ms were waited) caught the
# routes clipped to the old viewport's size, a different picture at every run.
SETTLE = """() => new Promise(r => requestAnimationFrame(
    () => setTimeout(() => requestAnimationFrame(() => r()), 400)))"""
# Fields whose value is the clock's (a plan's date and time default to today and now): left out
# when a new shot is compared with the committed one.
CLOCK_FIELDS = ("input[type=date]", "input[type=time]", "input[type=datetime-local]")
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


def volatile_boxes(page: Any, selectors: Sequence[str], full_page: bool) -> list[Box]:
    """The boxes of the visible elements matching ``selectors``, in the screenshot's pixels:
    the document's (``full_page``) or the viewport's."""
    if not selectors:
        return []
    rects = page.evaluate(
        """([sel, full]) => [...document.querySelectorAll(sel)].map(e => e.getBoundingClientRect())
            .filter(r => r.width > 0 && r.height > 0)
            .map(r => [r.x + (full ? scrollX : 0), r.y + (full ? scrollY : 0), r.width, r.height])""",
        [", ".join(selectors), full_page],
    )
    return [Box(*r) for r in rects]


def screenshots(
    page: Any, name: str, full_page: bool = True, volatile: Sequence[str] = ()
) -> list[Path]:
    """The page at 390x844 and at 1440x900, as ``screenshots/<name>-<w>x<h>.png``: the whole
    page from its top (``full_page``), so a long phone page is seen entire. Animations are
    stopped and the caret hidden. A file is written only if its picture changed outside the
    clock's fields and the elements matching ``volatile`` (CSS selectors of content that
    follows the clock or a random id); the paths written are returned."""
    SCREENSHOTS.mkdir(exist_ok=True)
    before = page.viewport_size
    written: list[Path] = []
    try:
        for w, h in VIEWPORTS:
            page.set_viewport_size({"width": w, "height": h})
            page.evaluate(SETTLE)
            path = SCREENSHOTS / f"{name}-{w}x{h}.png"
            png = page.screenshot(animations="disabled", caret="hide", full_page=full_page)
            ignore = volatile_boxes(page, [*CLOCK_FIELDS, *volatile], full_page)
            if write_if_changed(path, png, ignore):
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
