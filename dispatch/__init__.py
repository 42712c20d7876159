"""On-demand ride dispatch.

Live dispatch (this package's top level):

* :mod:`dispatch.zone`, :mod:`dispatch.flex_zones`, :mod:`dispatch.meeting_points` — where and
  when the service runs (H3-indexed polygons from GTFS-Flex or GeoJSON; virtual stops);
* :mod:`dispatch.vehicle`, :mod:`dispatch.request` — vehicles and their plans; ride requests and
  the service rules (max wait, ride time = a × direct + b, notice);
* :mod:`dispatch.travel_times`, :mod:`dispatch.street_times` — driving times (straight line or
  the OSM graph), :mod:`dispatch.time_dependent` — time-of-day speed periods, FIFO;
* :mod:`dispatch.insertion` (numba kernel), :mod:`dispatch.plan_arrays` (its CSR input),
  :mod:`dispatch.insertion_reference` (brute force, the test oracle) — instant quotes;
* :mod:`dispatch.dispatcher` — quote → book → board → alight, cancel, vehicle events, ETAs
  published through :mod:`dispatch.events`;
* :mod:`dispatch.reoptimize`, :mod:`dispatch.rebalance` — background plan improvement (OR-Tools,
  :mod:`dispatch.optimize`; one problem per zone, vans and shuttles together, each on its own
  travel profile) and idle-vehicle rebalancing;
* :mod:`dispatch.scale_out` — several workers sharing zones (leases, work queues, snapshots);
* :mod:`dispatch.simulation` — accelerated replay of a day with invariants and KPIs.

Static DARP / PDPTW solving lives in :mod:`dispatch.problem` (per-vehicle travel profiles, one
distance cost) and :mod:`dispatch.optimize` (ALNS, the hybrid with parallel searches and an
optional OR-Tools polish, fleet minimisation by route elimination, a route pool).
``dispatch`` never imports ``app``.
"""
