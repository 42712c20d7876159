"""The on-demand dispatch service inside the app: what joins the dispatcher to the rest.

``on_demand_legs``: the planner's on-demand provider (:class:`routing.on_demand.OnDemandProvider`)
over the live fleet, in one process or through each zone's owner when scaled out.
"""
