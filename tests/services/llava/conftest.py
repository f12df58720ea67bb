"""llava worker fixtures: tiny LLaVA and LLaVA-NeXT workers, and a forwarder in front of one."""

from __future__ import annotations

import pytest
from openai import OpenAI
from support.procs import ProcessFactory, ServerProcess

# Small limits so oversized images are cheap to make; one queue slot so 429 is easy to reach.
LLAVA_ENV = {
    "LLAVA_PROFILE": "tiny",
    "LLAVA_MAX_QUEUE": "1",
    "LVI_MAX_IMAGE_BYTES": "200000",
    "LVI_MAX_IMAGE_PIXELS": "1000000",
}


@pytest.fixture(scope="session")
def llava(procs: ProcessFactory) -> ServerProcess:
    """Tiny LLaVA-1.5 (tiny:llava) through the real from_pretrained path."""
    return procs.lvi("worker", "llava", env=LLAVA_ENV)


@pytest.fixture(scope="session")
def llava_next(procs: ProcessFactory) -> ServerProcess:
    """Tiny LLaVA-NeXT (any-resolution tiling, Mistral-style template)."""
    return procs.lvi("worker", "llava", env={**LLAVA_ENV, "LLAVA_MODEL": "tiny:llava-next"})


@pytest.fixture(scope="session")
def upstream(procs: ProcessFactory, llava: ServerProcess) -> ServerProcess:
    """LLAVA_BACKEND=openai forwarding to the tiny LLaVA worker, as it would to vLLM."""
    return procs.lvi(
        "worker",
        "llava",
        env={**LLAVA_ENV, "LLAVA_BACKEND": "openai", "LLAVA_UPSTREAM_URL": llava.url + "/v1"},
    )


@pytest.fixture(params=["llava", "llava_next", "upstream"])
def server(request: pytest.FixtureRequest) -> ServerProcess:
    """Every way of serving the contract: the client tests run against each."""
    srv: ServerProcess = request.getfixturevalue(request.param)
    return srv


@pytest.fixture
def client(server: ServerProcess) -> OpenAI:
    # No retries: a 429 or 5xx must show up in the test, not be retried away.
    return OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=60)
