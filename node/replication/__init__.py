"""Replication: Shoal as a primary (backlog, PSYNC, streaming) and as a replica (the link task).

``node.replication`` is a ``manager.ReplicationManager``; see its docstring
for the interface other layers use (``repl_offset``, ``link_down_ms``,
``replicate_from``, ``promote``, ``is_replica``).
"""
