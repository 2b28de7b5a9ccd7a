"""Player and CDN events: the canonical schema, landing ingest and the simulator."""
