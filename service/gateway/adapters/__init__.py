"""Tenant adapters: the file store (source of truth), the per-gateway registry cache, and the hot-swap notices."""
