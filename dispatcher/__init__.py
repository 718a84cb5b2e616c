"""The service: configuration, data, ledger, outbox, authentication and the web layer."""
