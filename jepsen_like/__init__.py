"""Fault-injection harness: nemeses, workloads, history checkers, reports (issue S7)."""
