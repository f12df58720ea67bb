"""Test support: real processes (uvicorn workers, redis-server) on loopback ports."""
