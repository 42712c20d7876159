"""/api/v1/docs renders from the server's own files, with every other origin cut (issue #13).

FastAPI's default page loads Swagger UI from a CDN: without internet it was blank. Swagger UI's
own markup failed axe-core (white on light method badges, version badges and links under 4.5:1,
a page without ``lang``, links nested in the operations' buttons, unnamed selects and inputs):
the page now carries its own stylesheet and start-up script (frontend/public/swagger-ui) and is
checked like every other screen, folded and with an operation opened and tried.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.frontend.ui_checks import assert_accessible, screenshots

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_api_docs_render_without_internet(page: Any, live_server: str) -> None:
    html = httpx.get(f"{live_server}/api/v1/docs").text
    assert "cdn." not in html and "/swagger-ui/swagger-ui-bundle.js" in html
    page.goto("/api/v1/docs")
    # Swagger UI (its script and styles served here) drew the local openapi.json: the title,
    # and the operations of the first tag (a loaded machine takes long to draw all 100+).
    page.wait_for_selector(".swagger-ui .info .title", timeout=120_000)
    assert page.inner_text(".swagger-ui .info .title").startswith("Tsunagu")
    page.wait_for_selector(
        ".swagger-ui .opblock-summary-path[data-path='/healthz']", timeout=120_000
    )
    assert page.locator(".swagger-ui .opblock").count() >= 2
    assert page.outside_requests == []  # nothing asked of another origin
    assert_accessible(page, "API docs")
    screenshots(page, "api-docs")
    # An operation opened, tried out and run: its parameters, media types and answer.
    op = ".swagger-ui .opblock:has(.opblock-summary-path[data-path='/healthz'])"
    page.click(f"{op} .opblock-summary-control")
    page.click(f"{op} .try-out__btn")
    page.click(f"{op} .execute")
    status = f"{op} .live-responses-table tr.response .response-col_status"
    page.wait_for_selector(status)
    assert page.inner_text(status).strip().startswith("200")
    assert_accessible(page, "API docs, an operation tried")
    assert page.outside_requests == []
