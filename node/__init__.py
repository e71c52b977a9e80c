"""One Shoal node process: config, trio server, RESP, dispatch, keyspace engine."""
