"""Inference backends behind the gateway: the real Triton client, and a deterministic fake for API unit tests."""
