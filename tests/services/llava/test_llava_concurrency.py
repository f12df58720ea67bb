"""The llava worker in ``openai`` mode (in front of vLLM) adds no serialisation.

A fake OpenAI-compatible server (tests/support/fake_openai.py, a real uvicorn process) streams
every reply as 10 chunks 0.1 s apart and serves any number of streams at once, as vLLM does
with continuous batching. Through a real llava worker process (LLAVA_BACKEND=openai) and a
real gateway process (its OpenAI passthrough), 8 concurrent streamed chats must finish in
about the time of one. The bound is generous (3x) because the 2-core test machine is noisy;
serialisation would show as ~8x. The fake also reports how many streams it had open at once.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import httpx
import pytest
from support.procs import ProcessFactory, ServerProcess, free_port

TESTS = Path(__file__).resolve().parents[2]
CHUNKS, DELAY_S, N = 10, 0.1, 8
KEY = "alice-key"
CHAT = {
    "messages": [{"role": "user", "content": "Describe the image."}],
    "max_tokens": 16,
    "stream": True,
}


@pytest.fixture(scope="module")
def fake_upstream(procs: ProcessFactory) -> ServerProcess:
    port = free_port()
    srv = ServerProcess(
        name="fake-openai",
        args=[
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "support.fake_openai:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env={
            **procs.base_env,
            "PYTHONPATH": str(TESTS),
            "FAKE_DELAY_S": str(DELAY_S),
            "FAKE_CHUNKS": str(CHUNKS),
        },
        port=port,
        log_path=procs.log_dir / f"fake-openai-{port}.log",
        ready_path="/health",
    )
    procs.servers.append(srv)
    return srv.start()


@pytest.fixture(scope="module")
def forwarder(procs: ProcessFactory, fake_upstream: ServerProcess) -> ServerProcess:
    return procs.lvi(
        "worker",
        "llava",
        env={
            "LLAVA_BACKEND": "openai",
            "LLAVA_UPSTREAM_URL": fake_upstream.url + "/v1",
            "LLAVA_MAX_CONCURRENCY": "16",
        },
    )


@pytest.fixture(scope="module")
def gateway(procs: ProcessFactory, forwarder: ServerProcess) -> ServerProcess:
    # The OpenAI passthrough needs no session, so no Redis traffic; the URL is never dialled.
    return procs.lvi(
        "gateway",
        env={
            "GATEWAY_API_KEYS": f"alice:{KEY}",
            "GATEWAY_LLAVA_URL": forwarder.url,
            "GATEWAY_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
            "GATEWAY_RATE_LIMIT_PER_MINUTE": "0",
        },
        ready_path="/healthz",
    )


async def one_chat(client: httpx.AsyncClient, url: str) -> tuple[float, int]:
    """Seconds to the end of one streamed chat, and the number of text deltas it carried."""
    t0 = time.perf_counter()
    deltas = 0
    async with client.stream("POST", url, json=CHAT) as r:
        assert r.status_code == 200, await r.aread()
        async for line in r.aiter_lines():
            data = line[5:].strip() if line.startswith("data:") else "[DONE]"
            if data != "[DONE]":
                choices = json.loads(data)["choices"]
                deltas += sum(c["delta"].get("content") == "tok " for c in choices)
    return time.perf_counter() - t0, deltas


async def measure(base_url: str, headers: dict[str, str]) -> tuple[float, float]:
    """(seconds for one chat alone, seconds for N concurrent chats)."""
    url = base_url + "/v1/chat/completions"
    limits = httpx.Limits(max_connections=2 * N)
    async with httpx.AsyncClient(headers=headers, timeout=60, limits=limits) as client:
        await one_chat(client, url)  # warm-up: connections, first-request costs
        single, deltas = await one_chat(client, url)
        assert deltas == CHUNKS
        t0 = time.perf_counter()
        results = await asyncio.gather(*(one_chat(client, url) for _ in range(N)))
        total = time.perf_counter() - t0
    assert [d for _, d in results] == [CHUNKS] * N
    return single, total


def max_open(upstream: ServerProcess) -> int:
    return int(httpx.get(upstream.url + "/stats", timeout=5).json()["max_open"])


def test_concurrent_streams_through_the_worker_take_the_time_of_one(
    fake_upstream: ServerProcess, forwarder: ServerProcess
) -> None:
    single, total = asyncio.run(measure(forwarder.url, {}))
    print(f"worker: one chat {single:.2f}s, {N} concurrent {total:.2f}s")
    assert single >= CHUNKS * DELAY_S * 0.9
    assert total < 3 * single, f"{N} concurrent: {total:.2f}s, one: {single:.2f}s"
    assert max_open(fake_upstream) >= N


def test_concurrent_streams_through_the_gateway_take_the_time_of_one(
    fake_upstream: ServerProcess, gateway: ServerProcess
) -> None:
    single, total = asyncio.run(measure(gateway.url, {"Authorization": f"Bearer {KEY}"}))
    print(f"gateway: one chat {single:.2f}s, {N} concurrent {total:.2f}s")
    assert single >= CHUNKS * DELAY_S * 0.9
    assert total < 3 * single, f"{N} concurrent: {total:.2f}s, one: {single:.2f}s"
    assert max_open(fake_upstream) >= N


def _png_uri() -> str:
    import numpy as np

    from lvi.images import EncodedImage, encode_png

    data = encode_png(np.zeros((8, 8, 3), np.uint8))
    return EncodedImage.from_bytes(data).to_data_uri()


@pytest.mark.parametrize("policy", ["latest", "all"])
def test_forwarder_applies_the_image_policy(policy: str) -> None:
    """vLLM serves LLaVA-1.5 with one image per prompt: under ``latest`` the forwarder sends
    only the newest image, the older ones become the transformers backend's text note."""
    from lvi.contracts.llava import ChatCompletionRequest
    from services.llava.conversation import OMITTED_IMAGE_NOTE, parse_request
    from services.llava.service import UpstreamChat
    from services.llava.settings import LlavaSettings
    from services.llava.upstream import OpenAIUpstream

    uri = _png_uri()
    image = {"type": "image_url", "image_url": {"url": uri}}
    req = ChatCompletionRequest.model_validate(
        {
            "messages": [
                {"role": "user", "content": [image, {"type": "text", "text": "first"}]},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": [image, {"type": "text", "text": "now?"}]},
            ]
        }
    )
    settings = LlavaSettings(
        backend="openai", upstream_url="http://127.0.0.1:9/v1", image_policy=policy
    )
    chat = parse_request(req, default_max_tokens=16, max_images=8, allow_remote=False)
    payload = UpstreamChat(None, OpenAIUpstream(settings))._payload(chat)  # type: ignore[arg-type]
    first, last = payload["messages"][0]["content"], payload["messages"][2]["content"]
    assert last[0]["type"] == "image_url"
    if policy == "latest":
        assert first[0] == {"type": "text", "text": OMITTED_IMAGE_NOTE}
    else:
        assert first[0]["type"] == "image_url"
