"""GTFS-JP extras: stop-name readings (yomigana) and translations for stop search.

Two translations.txt layouts are met in Japanese feeds:

* GTFS-JP legacy (標準的なバス情報フォーマット v1/v2): ``trans_id,lang,translation`` where
  ``trans_id`` is the translated text itself (e.g. the stop name) and ``lang`` is ``ja``,
  ``ja-Hrkt`` (kana reading), ``en``...
* GTFS (and GTFS-JP v3): ``table_name,field_name,language,translation,record_id,
  record_sub_id,field_value`` keyed by ``record_id`` (the stop_id) or by ``field_value``.

The GTFS-JP tables agency_jp, office_jp, routes_jp and pattern_jp are kept as read
(``feed.table("routes_jp")`` ...).
"""

from __future__ import annotations

import pandas as pd

from gtfs.feed import Feed

READING_LANG = "ja-Hrkt"

_COLUMNS = ["stop_id", "lang", "name"]


def stop_readings(feed: Feed) -> pd.DataFrame:
    """``stop_id, lang, name``: every translation of every stop name (both layouts)."""
    tr = feed.table("translations")
    stops = feed.stops
    if tr.empty or stops.empty or not {"stop_id", "stop_name"} <= set(stops.columns):
        return pd.DataFrame(columns=_COLUMNS)
    names = stops[["stop_id", "stop_name"]].astype(str)
    parts: list[pd.DataFrame] = []
    if {"trans_id", "lang", "translation"} <= set(tr.columns):
        legacy = tr[["trans_id", "lang", "translation"]].astype(str)
        m = names.merge(legacy, left_on="stop_name", right_on="trans_id")
        parts.append(m.rename(columns={"translation": "name"})[_COLUMNS])
    if {"table_name", "field_name", "language", "translation"} <= set(tr.columns):
        new = tr[(tr["table_name"] == "stops") & (tr["field_name"] == "stop_name")].astype(str)
        if "record_id" in new.columns:
            by_id = new[new["record_id"] != ""]
            parts.append(
                by_id.rename(
                    columns={"record_id": "stop_id", "language": "lang", "translation": "name"}
                )[_COLUMNS]
            )
        if "field_value" in new.columns:
            by_val = new[new["field_value"] != ""]
            m = names.merge(by_val, left_on="stop_name", right_on="field_value")
            parts.append(m.rename(columns={"language": "lang", "translation": "name"})[_COLUMNS])
    if not parts:
        return pd.DataFrame(columns=_COLUMNS)
    out = pd.concat(parts, ignore_index=True)
    out = out[out["stop_id"].isin(names["stop_id"]) & (out["name"] != "")]
    return (
        out.drop_duplicates().sort_values(["stop_id", "lang"], kind="stable").reset_index(drop=True)
    )
