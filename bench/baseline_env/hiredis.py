"""Put first on PYTHONPATH of a baseline gateway (`bench.stack.baseline_gateway_process`): versions before hiredis
was a dependency ran redis-py's pure-Python reply parser, and so does their baseline."""

raise ImportError("the baseline gateway runs without hiredis, as it was installed")
