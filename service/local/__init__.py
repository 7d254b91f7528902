"""The local stack of `make serve`: a real redis-server and the real tritonserver on loopback, and the gateway."""
