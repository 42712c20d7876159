"""The emissions service: CO2 of every trip and every resident, on the shared identity store.

Layout
------
``factors.py``
    The city's factor table with provenance (TOML/JSON, ``data/japan.toml`` by default;
    ``TSUNAGU_EMISSIONS_FACTORS_PATH``), and :meth:`FactorTable.to_routing` — the plain
    :class:`routing.co2.Co2Factors` the planner and on-demand quotes take as data.
``calculator.py``
    Pure pricing: legs, itineraries, the same trip by car, an on-demand ride shared among the
    persons on board (:func:`calculator.ride_share`).
``models.py``, ``migrations/``, ``store.py``
    The service's own tables on their own metadata and Alembic chain (version table
    ``emissions_alembic_version``), migrated at start into ``TSUNAGU_EMISSIONS_DATABASE_URL``
    (the app's database by default).
``sources.py``
    :class:`sources.MobilityRecords`: the mobility core's trips and rides, read only.
``ledger.py``
    A resident's monthly ledger (planned-and-taken, booked trips, rides) and its CSV.
``api.py``
    The router, ``/api/v1/emissions/...``.
``service.py``
    :class:`service.EmissionsService` (``services.emissions`` in the main process), the
    start-up hook, and :func:`service.create_emissions_app` for
    ``tsunagu serve --service emissions``.

Extension points for the company features
-----------------------------------------
* Tables: subclass :class:`models.EmissionsModel`, add a revision under
  ``migrations/versions`` (``down_revision`` the current head).
* Factors: :meth:`factors.FactorTable.fuel` / ``electricity_factor`` / ``mode`` give value,
  unit, source and year for Scope 1/2 lines and the Cat. 7 average-data method; new factor
  kinds go in the TOML table and :class:`factors.FactorTable`.
* Per-person trips: :meth:`ledger.Ledger.entries` (distance-based Cat. 7 per consenting
  employee); :meth:`ledger.Ledger.ride_leg` prices a completed ride from the dispatcher's record.
* Routes: add them to ``api.router`` (or a router of your own included in ``api.router``), so
  they are served in the main process and by the service on its own alike; get the service
  with ``api.EmissionsDep`` and the caller with ``app.identity.deps.CurrentPrincipal`` /
  ``require_roles``.
"""
