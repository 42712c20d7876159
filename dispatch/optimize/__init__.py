"""Static DARP / PDPTW solvers: a numba ALNS and an OR-Tools routing model."""
