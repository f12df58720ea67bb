"""Which proxies may name the client address (``GATEWAY_FORWARDED_ALLOW_IPS``).

The client address decides the failed-auth throttle (and is logged). Behind the web UI, which
calls the gateway for all its visitors from one address, the TCP peer would make one visitor's
failed sign-ins throttle everyone; so the proxies named here (the frontend, a reverse proxy)
may say who the client is in ``X-Forwarded-For``. Nobody else may: uvicorn's
``ProxyHeadersMiddleware`` does the parsing (rightmost untrusted hop), and ``lvi gateway``
turns off uvicorn's own default trust of 127.0.0.1 (launcher/serve.py).
"""

from __future__ import annotations

import ipaddress
import logging

from fastapi import FastAPI
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

log = logging.getLogger("lvi.gateway")


def trust_proxies(app: FastAPI, spec: str) -> None:
    """Add the middleware when ``spec`` names proxies (last: it must run first)."""
    entries = [e.strip() for e in spec.split(",") if e.strip()]
    if not entries:
        return
    for entry in entries:
        if entry == "*":
            log.warning("GATEWAY_FORWARDED_ALLOW_IPS=*: any caller may choose its own address")
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            # uvicorn keeps it as a literal peer name; a DNS name (a k8s Service) never matches.
            log.warning(
                "GATEWAY_FORWARDED_ALLOW_IPS entry %r is not an IP address or CIDR: it matches "
                "only a peer literally named so (names are not resolved)",
                entry,
            )
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=entries)
