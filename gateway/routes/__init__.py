"""Thin HTTP routes: each takes its services through `gateway.deps` and calls one workflow."""
