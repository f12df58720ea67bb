"""The gateway: the only public API. Sessions in Redis, workflows over the model workers."""
