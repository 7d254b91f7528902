"""HTTP layer: routers, dependencies and middleware."""
