"""tipsv2-serve's serving side: the FastAPI gateway, its Triton client, the cache, and the `tipsv2` CLI.

Nothing in this package imports torch: the gateway image does not carry it.
"""
