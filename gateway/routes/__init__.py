"""Thin HTTP routes over :class:`gateway.orchestrator.Orchestrator`."""
