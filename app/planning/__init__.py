"""City planning (#14): service levels, accessibility, hubs and scenarios for city planners."""
