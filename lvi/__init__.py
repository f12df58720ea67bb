"""LLaVA-Interactive, served: the shared kernel (contracts, errors, images, worker runtime).

Import-light on purpose: nothing here imports torch at import time.
"""

__version__ = "0.1.0"
