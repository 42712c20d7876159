"""Stop names by language: the feed's name (ja), kana readings for ja, translations for others."""

from __future__ import annotations

from routing.itinerary import ItineraryBuilder
from routing.street import StraightLineAccess
from tests.routing.tiny import TinyFeed, TinyTrip


def test_names_follow_the_locale() -> None:
    tt = TinyFeed(2, [TinyTrip("a", [0, 1], [0, 60])]).compile()
    b = ItineraryBuilder(
        tt,
        StraightLineAccess(tt.stop_lat, tt.stop_lon),
        readings={0: "むろらんえきまえ"},
        translations={"en": {0: "Muroran Station"}},
    )
    ja = b.stop_place(0, "ja")
    assert ja.name == "Stop 0" and ja.reading == "むろらんえきまえ"
    en = b.stop_place(0, "en")
    assert en.name == "Muroran Station" and en.reading is None
    # No translation for this stop or language: the feed's own name.
    assert b.stop_place(1, "en").name == "Stop 1"
    assert b.stop_place(0, "fr").name == "Stop 0"
