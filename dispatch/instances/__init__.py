"""Readers of the benchmark instance formats: Cordeau (2006) DARP and Li & Lim PDPTW."""

from dispatch.instances.best_known import BestKnown, read_best_known
from dispatch.instances.cordeau import read_cordeau
from dispatch.instances.lilim import read_lilim

__all__ = ["BestKnown", "read_best_known", "read_cordeau", "read_lilim"]
