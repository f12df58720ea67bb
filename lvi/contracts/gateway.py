"""The gateway's public contract, re-exported from the SDK (:mod:`lvi_client.models`).

The contract lives in the client package so that the SDK installs without the server's
kernel; the gateway keeps importing it from here.
"""

from __future__ import annotations

# Every public name of the contract, as listed by its __all__.
from lvi_client.models import *  # noqa: F403
from lvi_client.models import __all__ as __all__
