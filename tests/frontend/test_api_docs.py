"""/api/v1/docs renders from the server's own files, with every other origin cut (issue #13).

FastAPI's default page loads Swagger UI from a CDN: without internet it was blank.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.frontend.ui_checks import screenshots

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
    screenshots(page, "api-docs")
