"""The cluster bus: message schema, msgpack codec and the pure cluster state machine.

Arrives with issue S3 (cluster mode). Depends only on ``slots``.
"""
