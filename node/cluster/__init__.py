"""Cluster mode inside a node: the bus driver, request routing, and the CLUSTER commands' data."""
