"""Readers of the benchmark instance formats: Cordeau DARP (2006 'a', 2003 'pr'), Li & Lim PDPTW."""

from dispatch.instances.best_known import BestKnown, read_best_known
from dispatch.instances.cordeau import read_cordeau, read_cordeau_pr
from dispatch.instances.lilim import read_lilim

__all__ = ["BestKnown", "read_best_known", "read_cordeau", "read_cordeau_pr", "read_lilim"]
