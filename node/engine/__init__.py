"""The keyspace engine: databases, values, expiry. Pure: no trio, no clock reads, no I/O."""
