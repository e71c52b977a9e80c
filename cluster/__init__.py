"""The cluster seen from outside: launcher (`shoal up`), admin tooling, CLI, pytest fixtures.

Talks to nodes over RESP like any client; never imports ``node`` or ``gossip``.
"""
