"""Deterministic simulation of N cluster state machines on a virtual network and clock."""

from jepsen_like.sim.cluster import SimCluster

__all__ = ["SimCluster"]
