"""The default factor table says which of its values were found in a published source (#11):
every verified factor names its page; the factors written from memory stay flagged; the API
shows the flag with each factor it uses."""

from __future__ import annotations

from app.emissions.calculator import factor_json
from app.emissions.factors import load_factor_table

#: The factors no published page was found for (see japan.toml's `check` of each).
UNCONFIRMED = {
    ("modes", "AIR"), ("modes", "FERRY"),
    ("electricity", "national_average"), ("electricity", "hokkaido_electric"),
    ("electricity", "hokkaido_electric_adjusted"), ("electricity", "tepco"),
}  # fmt: skip


def test_each_factor_says_whether_a_source_confirmed_it() -> None:
    table = load_factor_table()
    seen = set()
    for section in ("modes", "fuels", "electricity"):
        for key, f in getattr(table, section).items():
            seen.add((section, key))
            if (section, key) in UNCONFIRMED:
                assert not f.verified, (section, key)
                assert f.check, (section, key)  # says what was looked for
            else:
                assert f.verified, (section, key)
                if f.value:  # zero by definition needs no page
                    assert "http" in f.check, (section, key)
    assert seen >= UNCONFIRMED
    # the values recalled from memory keep their warning
    for key in ("national_average", "hokkaido_electric", "tepco"):
        assert "as recalled" in table.electricity[key].note
    assert factor_json(table.electricity["tepco"])["verified"] is False
    # MLIT's per-mode figures confirmed are FY2019's (not FY2021's, as first written)
    for key, value in (("CAR", 130), ("BUS", 57), ("RAIL", 17)):
        assert table.modes[key].value == value and table.modes[key].year == "FY2019", key
    assert factor_json(table.fuel("gasoline"))["verified"] is True
