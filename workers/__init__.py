"""Everything after commit: RQ jobs, the egress HTTP client, retries, the pump and the worker entry point."""
