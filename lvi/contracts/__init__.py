"""Typed REST contracts: one module per worker (shared by the worker and the gateway's client)
plus ``gateway`` for the public API."""
