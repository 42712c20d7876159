"""The CO2 pages (issue #11, emissions.html) in a real browser (Debian's chromium).

A company admin signs in, registers a company, invites an employee, uploads a wrong energy CSV
(errors shown per line and column, nothing saved) then a right one and a survey CSV, sees the
report's charts drawn with the hand-computed figures, the lines with their methods and factors,
downloads the Scope 1/2 and Category 7 CSVs and runs the EV scenario. A resident who took a
planned bus trip yesterday goes from the planner to their CO2 page and sees the month's CO2 and
the saving against driving, downloads the ledger CSV, accepts an invitation and revokes it. City
staff see the aggregates only, small figures withheld. English and Japanese both appear.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import uuid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.frontend.conftest import ADMIN, api_token

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WAIT_MS = 60_000
TZ = ZoneInfo("Asia/Tokyo")
PASSWORD = "correct-horse-9"
# Demo city (Muroran): a bus trip between these, and the company's site.
HOME = "42.3158,140.9738"
SITE = (42.3466, 141.0240)


def _user(base: str, *roles: str) -> tuple[str, str]:
    """A new user with ``roles`` (set by the administrator): ``(email, access token)``."""
    email = f"co2-{uuid.uuid4().hex[:8]}@example.org"
    r = httpx.post(f"{base}/api/v1/auth/signup", json={"email": email, "password": PASSWORD})
    r.raise_for_status()
    if roles:
        admin = api_token(base, *ADMIN)
        r2 = httpx.patch(
            f"{base}/api/v1/users/{r.json()['user']['id']}/roles",
            json={"roles": ["resident", *roles]},
            headers={"Authorization": f"Bearer {admin}"},
        )
        r2.raise_for_status()
    return email, api_token(base, email, PASSWORD)


def _sign_in(page: Any, email: str, lang: str, path: str = "/emissions.html") -> None:
    page.add_init_script(f"localStorage.setItem('tsunagu.lang', '{lang}')")
    page.goto(path)
    page.wait_for_selector("body[data-ready='1']", timeout=WAIT_MS)
    page.fill("#login-form input[name=email]", email)
    page.fill("#login-form input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")


def _csv_file(text: str) -> dict[str, Any]:
    return {"name": "data.csv", "mimeType": "text/csv", "buffer": text.encode()}


def _download(page: Any, selector: str) -> list[dict[str, str]]:
    with page.expect_download(timeout=WAIT_MS) as dl:
        page.click(selector)
    text = Path(dl.value.path()).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def _bars(page: Any, chart: str, series: str) -> dict[str, float]:
    """The drawn bars of one series: ``{month: value}``, each with a visible height."""
    out: dict[str, float] = {}
    for bar in page.query_selector_all(f"{chart} g[data-series='{series}'] rect.bar"):
        box = bar.bounding_box()
        assert box is not None and box["height"] > 0, series
        out[str(bar.get_attribute("data-category"))] = float(str(bar.get_attribute("data-value")))
    return out


def _slices(page: Any, chart: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for s in page.query_selector_all(f"{chart} path.slice"):
        assert len(str(s.get_attribute("d"))) > 20
        out[str(s.get_attribute("data-series"))] = float(str(s.get_attribute("data-value")))
    return out


def test_company_admin_registers_uploads_sees_the_charts_and_downloads_the_csv(
    page: Any, live_server: str
) -> None:
    email, token = _user(live_server, "company_admin")
    auth = {"Authorization": f"Bearer {token}"}
    _sign_in(page, email, "en")
    page.wait_for_selector("#company:not([hidden]) #register-form:not([hidden])", timeout=WAIT_MS)
    assert page.is_hidden("#city")  # not city staff
    page.fill("#register-form input[name=name]", "Muroran Works")
    page.fill("#register-form input[name=lat]", str(SITE[0]))
    page.fill("#register-form input[name=lon]", str(SITE[1]))
    page.fill("#register-form input[name=headcount]", "20")
    page.click("#register-form button[type=submit]")
    page.wait_for_selector("#company-view[data-loaded='1'][data-report='ready']", timeout=WAIT_MS)
    (company,) = httpx.get(f"{live_server}/api/v1/emissions/companies", headers=auth).json()[
        "companies"
    ]
    assert company["name"] == "Muroran Works" and company["headcount"] == 20
    cid = company["id"]
    # Nothing reported yet: the charts are there, with nothing drawn.
    assert page.get_attribute("#chart-trend", "data-marks") == "0"
    year = page.input_value("#report-year")
    assert year == str(dt.datetime.now(TZ).year)

    # An invitation: its code and link on the page are the server's.
    page.fill("#invite-form input[name=label]", "Sato (assembly)")
    page.click("#invite-form button[type=submit]")
    page.wait_for_selector("#invitation-list tr[data-code]", timeout=WAIT_MS)
    (inv,) = httpx.get(
        f"{live_server}/api/v1/emissions/companies/{cid}/invitations", headers=auth
    ).json()["invitations"]
    row = page.locator(f"#invitation-list tr[data-code='{inv['code']}']")
    assert inv["code"] in row.inner_text() and "Sato (assembly)" in row.inner_text()
    assert (
        row.locator("a.invitation-link")
        .get_attribute("href", timeout=WAIT_MS)
        .endswith(f"/emissions.html?invite={inv['code']}")
    )

    # A wrong energy CSV: every error with its line and column; nothing saved.
    bad = f"month,energy,quantity,unit\n{year}-01,gasoline,100,L\n{year}-13,diesel,abc,L\n{year}-02,coal,1,t\n"
    page.set_input_files("#energy-file", files=[_csv_file(bad)])
    page.click("#energy-form button[type=submit]")
    page.wait_for_selector("#energy-errors:not([hidden]) tbody tr", timeout=WAIT_MS)
    errors = {
        (tr.get_attribute("data-line"), tr.get_attribute("data-column"))
        for tr in page.query_selector_all("#energy-errors tbody tr")
    }
    assert {("3", "month"), ("3", "quantity"), ("4", "energy")} <= errors, errors
    assert page.get_attribute("#energy-status", "data-state") == "error"
    assert page.locator("#scope12-lines tbody tr").count() == 0

    # The right one: Jan 100 L gasoline (x 2.32 = 232 kg) and 1,000 kWh (x 0.441 national
    # average = 441 kg location-based), Feb 50 L diesel (x 2.58 = 129 kg).
    good = (
        "month,energy,quantity,unit\n"
        f"{year}-01,gasoline,100,L\n{year}-01,electricity,1000,kWh\n{year}-02,diesel,50,L\n"
    )
    page.set_input_files("#energy-file", files=[_csv_file(good)])
    page.click("#energy-form button[type=submit]")
    page.wait_for_selector("#energy-status[data-state='ok']", timeout=WAIT_MS)
    assert page.is_hidden("#energy-errors")
    page.wait_for_function(
        "document.querySelectorAll('#scope12-lines tbody tr').length === 3", timeout=WAIT_MS
    )
    # Commuting from the survey: CAR 10 km x 2 x 5 days x 4 weeks = 400 km x 130 g = 52 kg a
    # month; BUS 5 km -> 200 km x 57 g = 11.4 kg a month; every month of the year.
    survey = "ref,mode,one_way_km,days_per_week\ne1,CAR,10,5\ne2,BUS,5,5\n"
    page.set_input_files("#survey-file", files=[_csv_file(survey)])
    page.click("#survey-form button[type=submit]")
    page.wait_for_selector("#survey-status[data-state='ok']", timeout=WAIT_MS)
    page.wait_for_function(
        "document.querySelectorAll('#cat7-lines tbody tr').length === 2", timeout=WAIT_MS
    )

    # The monthly trend, stacked by scope: drawn bars with the hand-computed values.
    assert _bars(page, "#chart-trend", "scope1") == {f"{year}-01": 232.0, f"{year}-02": 129.0}
    assert _bars(page, "#chart-trend", "scope2LocationBased") == {f"{year}-01": 441.0}
    cat7 = _bars(page, "#chart-trend", "scope3Category7")
    assert len(cat7) == 12 and set(cat7.values()) == {63.4}
    # The splits by scope and by mode (the year's totals).
    assert _slices(page, "#chart-scope") == {
        "scope1": 361.0,
        "scope2LocationBased": 441.0,
        "scope3Category7": pytest.approx(760.8),
    }
    assert _slices(page, "#chart-mode") == {"CAR": 624.0, "BUS": pytest.approx(136.8)}
    # Market-based Scope 2: Hokkaido Electric's adjusted factor 0.535.
    page.select_option("#scope2-basis", "scope2MarketBased")
    assert _bars(page, "#chart-trend", "scope2MarketBased") == {f"{year}-01": 535.0}

    # Each line with its method and factor (value, unit, source, year).
    car = page.locator("#cat7-lines tr[data-mode='CAR']").inner_text()
    assert "Average-data" in car and "130 g-CO2/pkm" in car and "MLIT" in car and "FY2019" in car
    gasoline = page.locator("#scope12-lines tr[data-energy='gasoline']").inner_text()
    assert "2.32 kg-CO2/L" in gasoline and "Ministry of the Environment" in gasoline
    # A factor no published page confirmed yet says so; a confirmed one does not.
    assert "not confirmed" not in car and "not confirmed" not in gasoline
    electricity = page.locator("#scope12-lines tr[data-energy='electricity']").inner_text()
    assert "0.441 kg-CO2/kWh (source not confirmed)" in electricity

    # CSV downloads: the reports' own columns and rows.
    s12 = _download(page, "#csv-scope12")
    assert list(s12[0])[:8] == [
        "month",
        "scope",
        "energy",
        "supplier",
        "quantity",
        "unit",
        "co2",
        "co2Market",
    ]
    rows = {(r["month"], r["energy"]): r for r in s12}
    assert rows[(f"{year}-01", "gasoline")]["co2"] == "232.0"
    assert rows[(f"{year}-01", "gasoline")]["factor_value"] == "2.32"
    assert rows[(f"{year}-01", "electricity")]["co2Market"] == "535.0"
    assert rows[(f"{year}-02", "diesel")]["co2"] == "129.0"
    assert rows[("total", "")]["co2"] == "802.0"
    c7 = _download(page, "#csv-category7")
    by_mode = {r["mode"]: r for r in c7 if r["method"] == "average-data"}
    assert by_mode["CAR"]["co2"] == "624.0" and by_mode["CAR"]["factor_unit"] == "g-CO2/pkm"
    assert by_mode["BUS"]["distance"] == "2400.0"
    assert c7[-1]["method"] == "total" and float(c7[-1]["co2"]) == pytest.approx(760.8)

    # The EV scenario: 400 km a month -> 60 kWh x 0.549 (Hokkaido Electric basic) = 32.94 kg
    # instead of 52 kg; cost 35,000 lease + 5,000 charger + 60 x 31 JPY, less 400 x 0.075 L x
    # 175 JPY of petrol = 36,610 JPY a month.
    page.select_option("#scenario-kind", "ev")
    page.fill("#scenario-share", "100")
    page.click("#scenario-form button[type=submit]")
    page.wait_for_selector("#scenario-result[data-state='done']", timeout=WAIT_MS)
    month_row = page.locator("#scenario-result tr[data-period='perMonth']").inner_text()
    assert "52 kg" in month_row and "32.9 kg" in month_row and "-19.1 kg" in month_row
    assert "36,610" in page.locator("#scenario-result tr[data-cost='net']").inner_text()
    assert page.locator("#scenario-result .scenario-chart rect.bar").count() == 2
    sc = _download(page, "#csv-scenario")
    assert sc[0]["scenario"] == "ev" and sc[0]["co2_perMonth_after"] == "32.94"

    # Japanese: the same report, drawn again in the other language.
    page.click("#lang-toggle")
    page.wait_for_selector("html[lang='ja']")
    assert page.inner_text("#company h2") == "会社のCO₂報告"
    assert "自家用車" in page.inner_text("#chart-mode .chart-legend")
    assert int(str(page.get_attribute("#chart-trend", "data-marks"))) == 12 + 2 + 1
    assert page.outside_requests == []  # type: ignore[attr-defined]


def _yesterdays_bus_trip(base: str) -> dict[str, Any]:
    day = (dt.datetime.now(TZ) - dt.timedelta(days=1)).date().isoformat()
    plan = httpx.get(
        f"{base}/api/v1/plan",
        params={
            "fromPlace": HOME,
            "toPlace": f"{SITE[0]},{SITE[1]}",
            "date": day,
            "time": "10:00",
            "mode": "TRANSIT,WALK",
        },
        timeout=120,
    ).json()
    its = [
        it for it in plan["plan"]["itineraries"] if any(leg["mode"] == "BUS" for leg in it["legs"])
    ]
    assert its, plan
    return dict(its[0])


def _grams(text: str) -> float:
    """'1.23 kg-CO₂' / '285 g-CO₂' -> grams."""
    m = re.fullmatch(r"(-?[\d,.]+) (g|kg|t)-CO₂", text.strip())
    assert m, text
    return float(m.group(1).replace(",", "")) * {"g": 1, "kg": 1e3, "t": 1e6}[m.group(2)]


def test_resident_sees_monthly_co2_and_saving_downloads_and_manages_consent(
    page: Any, live_server: str
) -> None:
    email, token = _user(live_server)
    auth = {"Authorization": f"Bearer {token}"}
    r = httpx.post(
        f"{live_server}/api/v1/emissions/trips",
        json={"itinerary": _yesterdays_bus_trip(live_server)},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    taken = r.json()
    co2, saving = taken["co2"]["co2"], taken["co2Saving"]["co2"]
    assert co2 > 0 and saving > 0
    # A company that invites this resident.
    _, admin = _user(live_server, "company_admin")
    company = httpx.post(
        f"{live_server}/api/v1/emissions/companies",
        json={"name": "Higashi Foods", "site": {"lat": SITE[0], "lon": SITE[1]}},
        headers={"Authorization": f"Bearer {admin}"},
    ).json()
    code = httpx.post(
        f"{live_server}/api/v1/emissions/companies/{company['id']}/invitations",
        json={"label": "driver"},
        headers={"Authorization": f"Bearer {admin}"},
    ).json()["code"]

    # From the planner (Japanese) to the CO2 page.
    _sign_in(page, email, "ja", "/")
    page.wait_for_selector("#logout:not([hidden])", timeout=WAIT_MS)
    page.click("#co2-link")
    page.wait_for_selector("#my-co2:not([hidden])", timeout=WAIT_MS)
    assert page.is_hidden("#company") and page.is_hidden("#city")
    page.fill("#ledger-month", taken["month"])
    page.wait_for_selector(
        f"#ledger-totals[data-month='{taken['month']}'][data-co2='{co2}']", timeout=WAIT_MS
    )
    assert page.inner_text("#my-co2 h2") == "わたしのCO₂（月別）"
    # Grams or kilograms, with the unit; the saving against the same trip by car.
    assert _grams(page.inner_text("#ledger-totals dd.total-co2")) == pytest.approx(co2, abs=5)
    assert _grams(page.inner_text("#ledger-totals dd.total-saving")) == pytest.approx(saving, abs=5)
    assert page.get_attribute("#ledger-totals", "data-saving") == str(saving)
    (trip,) = page.query_selector_all("#ledger-trips tbody tr")
    assert trip.get_attribute("data-kind") == "planned" and "バス" in trip.inner_text()
    # Times in Asia/Tokyo: the trip's start as the page shows it.
    start = dt.datetime.fromisoformat(taken["startTime"]).astimezone(TZ)
    assert f"{start:%H:%M}" in trip.inner_text()

    ledger = _download(page, "#ledger-csv")
    assert list(ledger[0]) == [
        "kind",
        "id",
        "start_time",
        "end_time",
        "modes",
        "distance_m",
        "co2_g",
        "car_co2_g",
        "co2_saving_g",
    ]
    assert [row["kind"] for row in ledger] == ["planned", "total"]
    assert ledger[0]["co2_g"] == str(co2) and ledger[1]["co2_saving_g"] == str(saving)

    # The invitation: accepted on the page, then revoked.
    page.fill("#invite-code", code)
    page.click("#accept-form button[type=submit]")
    page.wait_for_selector("#accept-result[data-state='accepted']", timeout=WAIT_MS)
    consent = page.locator(f"#consent-list li[data-company='{company['id']}']")
    consent.wait_for(timeout=WAIT_MS)
    assert consent.get_attribute("data-active") == "1" and "Higashi Foods" in consent.inner_text()
    page.once("dialog", lambda d: d.accept())
    consent.locator("button.revoke").click()
    page.wait_for_selector(
        f"#consent-list li[data-company='{company['id']}'][data-active='0']", timeout=WAIT_MS
    )
    counts = httpx.get(
        f"{live_server}/api/v1/emissions/companies/{company['id']}",
        headers={"Authorization": f"Bearer {admin}"},
    ).json()["employees"]
    assert counts == {"consenting": 0, "revoked": 1}
    # An unknown code is refused, in the page's language.
    page.fill("#invite-code", "no-such-code")
    page.click("#accept-form button[type=submit]")
    page.wait_for_selector("#accept-result[data-state='error']", timeout=WAIT_MS)
    assert page.inner_text("#accept-result") == "この招待コードは見つかりません"
    assert page.outside_requests == []  # type: ignore[attr-defined]


def test_city_staff_see_aggregates_with_small_figures_withheld(page: Any, live_server: str) -> None:
    email, token = _user(live_server, "city_staff")
    year = dt.datetime.now(TZ).year
    city = httpx.get(
        f"{live_server}/api/v1/emissions/city/summary",
        params={"year": year},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    s = city["series"]
    # This server has fewer than 5 companies reporting energy: Scope 1 is withheld every month.
    assert s["scope1"] == [None] * 12
    _sign_in(page, email, "en")
    page.wait_for_selector("#city[data-report='ready']", timeout=WAIT_MS)
    assert page.is_hidden("#company")
    # The page draws exactly the figures the city view gives, nothing of what it withholds.
    trend = [s["scope1"], s["scope2LocationBased"], s["scope3Category7"]]
    withheld = sum(v is None for series in trend for v in series)
    drawn = sum(v is not None and v > 0 for series in trend for v in series)
    assert page.get_attribute("#city-trend", "data-withheld") == str(withheld)
    assert page.locator("#city-trend rect.bar").count() == drawn
    assert page.locator("#city-trend g[data-series='scope1'] rect.bar").count() == 0
    rows = page.locator("#city-table tbody tr")
    assert rows.count() == 12
    assert "withheld" in rows.first.inner_text()
    assert "never a person's trips" in page.inner_text("#city-note")
