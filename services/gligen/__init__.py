"""The gligen worker: grounded generation and grounded inpainting (diffusers GLIGEN)."""
