"""The local stack of `make serve` (`stack.py`), and launchers of real servers on loopback that the stack, the tests
and the benchmarks share: the bundled tritonserver (`tritonserver.py`), redis-server (`redis_server.py`)."""
