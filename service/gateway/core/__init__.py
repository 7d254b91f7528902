"""Cross-cutting pieces of the gateway: settings, the error type, metrics, security."""
