"""Trips: one-step booking of a planned itinerary's on-demand legs, with TOMP-API states.

``service`` holds the state machine (book, hold, confirm, cancel, expire), ``store`` the
``trips`` table's conditional writes, ``sweeper`` the background pass that expires held
trips and releases their seats in any process.
"""
