"""Readable messages in the residents' languages (Japanese and English) for machine codes the
API returns, so a client can show the server's words as they are."""

from __future__ import annotations

ON_DEMAND_MESSAGES: dict[str, dict[str, str]] = {
    "outside_zone": {
        "en": "Outside the on-demand zone.",
        "ja": "オンデマンド交通の運行エリア外です。",
    },
    "outside_service_hours": {
        "en": "The on-demand service does not run at that time.",
        "ja": "その時間はオンデマンド交通の運行時間外です。",
    },
    "insufficient_notice": {
        "en": "Too short notice: the on-demand ride must be booked earlier.",
        "ja": "予約の締め切りを過ぎています。もっと早く予約してください。",
    },
    "too_far_ahead": {
        "en": "That on-demand ride is too far ahead to book yet.",
        "ja": "その日時のオンデマンド交通はまだ予約できません。",
    },
    "no_vehicle_available": {
        "en": "No on-demand vehicle can take this ride in time (all vehicles busy or full).",
        "ja": "空いている車両がありません（満席または対応できる車両がありません）。",
    },
    "pickup_in_past": {
        "en": "That time has already passed.",
        "ja": "その時刻は過ぎています。",
    },
    "party_too_large": {
        "en": "No vehicle of this zone takes a party that large.",
        "ja": "この人数を乗せられる車両がありません。",
    },
    "same_origin_destination": {
        "en": "The pick-up and drop-off are the same place.",
        "ja": "乗車地と降車地が同じ場所です。",
    },
    "invalid_request": {
        "en": "The on-demand request is not valid.",
        "ja": "リクエストが不正です。",
    },
    "dispatch_busy": {
        "en": "The on-demand service is busy; try again in a moment.",
        "ja": "オンデマンド交通が混み合っています。しばらくしてからお試しください。",
    },
}


def on_demand_message(code: str, locale: str, fallback: str = "") -> str:
    """The message of an on-demand refusal ``code`` in ``locale`` (``ja`` or ``en``), or
    ``fallback`` (the dispatcher's own English text) for a code without a translation."""
    texts = ON_DEMAND_MESSAGES.get(code)
    if texts is None:
        return fallback or code
    return texts.get(locale, texts["en"])
