"""The operator console (issue #13) in Debian's chromium, Japanese and English.

Findings guarded: the report was raw JSON; a non-zip upload said "original.zip is not a zip
archive" and "0 errors"; a missing stops.txt was buried under foreign-key errors; a feed whose
only errors are route colours could not be published; the first published version of a feed
could not be withdrawn; nothing showed the uploaded feed before publishing.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.frontend.conftest import ADMIN, api_token
from tests.frontend.test_dispatcher_console import pinned_heights
from tests.frontend.ui_checks import assert_accessible, overflows_sideways, screenshots

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SAMPLE = "google_sample.zip"


def _rewrite(
    src: Path, dest: Path, drop: str = "", replace: tuple[str, str, str] | None = None
) -> bytes:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename == drop:
                continue
            data = zin.read(info.filename)
            if replace and info.filename == replace[0]:
                text = data.decode("utf-8-sig")
                assert replace[1] in text
                data = text.replace(replace[1], replace[2]).encode()
            zout.writestr(info.filename, data)
    return dest.read_bytes()


def _login(page: Any, lang: str) -> None:
    page.add_init_script(f"localStorage.setItem('tsunagu.lang', '{lang}')")
    page.goto("/operator.html")
    page.wait_for_selector("body[data-ready='1']")
    page.fill("#login-form input[name=email]", ADMIN[0])
    page.fill("#login-form input[name=password]", ADMIN[1])
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#versions tbody tr[data-status='published']")


def _upload(page: Any, feed_id: str, name: str, data: bytes) -> str:
    page.fill("#upload-form input[name=feed_id]", feed_id)
    page.set_input_files(
        "#upload-form input[type=file]",
        files=[{"name": name, "mimeType": "application/zip", "buffer": data}],
    )
    page.evaluate("document.querySelector('#upload-status').textContent = ''")
    page.click("#upload-form button[type=submit]")
    page.wait_for_function(
        "!['', '…'].includes(document.querySelector('#upload-status').textContent)",
        timeout=120_000,
    )
    return str(page.inner_text("#upload-status"))


def _withdraw_by_api(base: str, feed_id: str) -> None:
    token = api_token(base, *ADMIN)
    httpx.post(
        f"{base}/api/v1/feeds/{feed_id}/withdraw", headers={"Authorization": f"Bearer {token}"}
    )


# Every feed version the shared server holds is listed, with its upload time: how many follows
# the tests run before (other cities' uploads), and a version's number counts every upload.
VERSIONS = "#feeds-section .table-scroll"
VOLATILE = (
    VERSIONS,
    "#upload-status",
    "#report-title",
    "#preview-title",
    # A report's sample rows may name today's date (expired_calendar's "today=").
    "#notices tbody td:last-child",
)


def _console_screenshots(page: Any, name: str) -> None:
    """:func:`screenshots` of the operator console, the versions list at a fixed height (its
    length moved the page's) and what follows the shared server's history left out of the
    comparison with the committed shot (``VOLATILE``)."""
    with pinned_heights(page, {VERSIONS: "18rem"}):
        screenshots(page, name, volatile=VOLATILE)


def test_report_table_and_unreadable_upload_in_japanese(
    page: Any, gtfs_dir: Path, tmp_path: Path
) -> None:
    _login(page, "ja")
    # Not a zip: the user's own file name, no "0 errors", no "original.zip".
    status = _upload(page, "broken", "時刻表2026.xlsx", b"not a zip at all" * 20)
    assert status.startswith("「時刻表2026.xlsx」はGTFSとして読めません"), status
    assert "original.zip" not in status and "0 件" not in status and "0 errors" not in status
    row = page.locator("#versions tbody tr[data-feed-id='broken']").first
    assert row.locator("td").nth(5).inner_text() == "—"  # no "0 errors" for an unread file

    # stops.txt missing: the table starts with it, above the foreign-key errors it causes.
    status = _upload(
        page, "nostops", "nostops.zip", _rewrite(gtfs_dir / SAMPLE, tmp_path / "n.zip", "stops.txt")
    )
    assert "エラーあり" in status
    page.wait_for_selector("#notices tbody tr[data-code]")
    codes = page.locator("#notices tbody tr").evaluate_all("rs => rs.map(r => r.dataset.code)")
    assert codes[0] == "missing_required_file", codes
    sevs = page.locator("#notices tbody tr").evaluate_all("rs => rs.map(r => r.dataset.severity)")
    rank = {"ERROR": 0, "WARNING": 1, "INFO": 2}
    assert [rank[s] for s in sevs[1:]] == sorted(rank[s] for s in sevs[1:])
    first = page.locator("#notices tbody tr").first.inner_text()
    assert "エラー" in first and "stops.txt" in first  # severity in Japanese, a sample row
    assert page.locator("#notices td pre, #report").count() == 0  # no raw JSON
    # Sort by count (largest first) then filter by code.
    page.click("#notices th[data-sort='total'] button")
    assert page.get_attribute("#notices th[data-sort='total']", "aria-sort") == "descending"
    counts = [
        int(c.replace(",", "")) for c in page.locator("#notices tbody td.num").all_inner_texts()
    ]
    assert counts == sorted(counts, reverse=True)
    page.fill("#notice-filter", "missing_required")
    assert set(
        page.locator("#notices tbody tr").evaluate_all("rs => rs.map(r => r.dataset.code)")
    ) <= {"missing_required_file", "missing_required_field", "missing_required_column"}
    page.fill("#notice-filter", "")
    page.select_option("#severity-filter", "WARNING")
    assert all(
        s == "WARNING"
        for s in page.locator("#notices tbody tr[data-severity]").evaluate_all(
            "rs => rs.map(r => r.dataset.severity)"
        )
    )
    page.select_option("#severity-filter", "")
    assert_accessible(page, "operator report (ja)")
    _console_screenshots(page, "operator-report-ja")
    page.set_viewport_size({"width": 360, "height": 740})
    assert not overflows_sideways(page)
    assert page.outside_requests == []


def test_preview_publish_with_reason_and_withdraw_in_english(
    page: Any, live_server: str, gtfs_dir: Path, tmp_path: Path
) -> None:
    colour = _rewrite(
        gtfs_dir / SAMPLE,
        tmp_path / "c.zip",
        replace=("routes.txt", "Airport - Bullfrog,,3,,,", "Airport - Bullfrog,,3,,,0"),
    )
    _login(page, "en")
    try:
        status = _upload(page, "colours", "colours.zip", colour)
        assert "has errors" in status and "1 errors" not in status, status
        row = page.locator("#versions tbody tr[data-feed-id='colours']").first
        # The map preview before publishing: its routes and stops.
        row.locator("button.preview").click()
        page.wait_for_selector("#preview-map[data-ready='1']")
        assert int(page.get_attribute("#preview-map", "data-routes")) >= 1
        assert int(page.get_attribute("#preview-map", "data-stops")) == 9
        assert (
            page.inner_text("#preview-title")
            == f"Preview: colours v{row.get_attribute('data-version-id')}"
        )
        # Publishing asks for a reason, which is recorded and shown.
        row.locator("button.publish-over").click()
        page.wait_for_selector("#action-dialog[open]")
        assert "invalid_color" in page.inner_text("#action-text")
        page.click("#action-confirm")  # no reason: refused in the dialog
        assert page.inner_text("#action-error") == "Please state a reason."
        page.fill("#action-reason", "Colours fixed next week; timetable needed now.")
        assert_accessible(page, "operator publish dialog (en)")
        page.click("#action-confirm")
        page.wait_for_selector(
            "#versions tbody tr[data-feed-id='colours'][data-status='published']"
        )
        published = page.inner_text("#versions tbody tr[data-feed-id='colours']")
        assert "Published with reason: Colours fixed next week" in published
        net = httpx.get(f"{live_server}/api/v1/network").json()
        assert sorted(p["feed_id"] for p in net["published"]) == ["colours", "muroran"]
        _console_screenshots(page, "operator-versions-en")
        # Withdraw the feed's first (only) published version, after a confirmation.
        page.locator("#versions tbody tr[data-feed-id='colours'] button.withdraw").click()
        page.wait_for_selector("#action-dialog[open]")
        assert page.is_hidden("#reason-label")
        page.click("#action-confirm")
        page.wait_for_selector("#versions tbody tr[data-feed-id='colours'][data-status='archived']")
        net = httpx.get(f"{live_server}/api/v1/network").json()
        assert [p["feed_id"] for p in net["published"]] == ["muroran"]
        assert page.outside_requests == []
    finally:
        _withdraw_by_api(live_server, "colours")  # the shared server serves the demo alone
