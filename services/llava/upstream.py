"""The ``openai`` backend: forward the same contract to an OpenAI-compatible server.

For deployments that outgrow one process (vLLM serving a LLaVA model with continuous
batching), the worker keeps its contract, validation, admission control, deadlines and
metrics, and passes requests and SSE streams through to ``LLAVA_UPSTREAM_URL``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from httpx_sse import EventSource

from lvi.errors import BadGateway, DeadlineExceeded, LviError, ServiceUnavailable
from lvi.logs import request_id_var
from services.llava.settings import LlavaSettings

log = logging.getLogger("lvi.llava.upstream")

# Headers of an upstream reply that mean something to our clients.
PASSED_HEADERS = ("x-lvi-truncated-turns", "retry-after")


class UpstreamError(LviError):
    """An upstream 4xx, relayed with its own status, type, code and message."""

    def __init__(self, status: int, detail: dict[str, Any], headers: dict[str, str]) -> None:
        super().__init__(
            str(detail.get("message") or f"Upstream answered {status}."), headers=headers
        )
        self.status = status
        self.type = str(detail.get("type") or "invalid_request_error")
        self.code = str(detail.get("code") or "upstream_error")
        param = detail.get("param")
        self.param = str(param) if param is not None else None


class OpenAIUpstream:
    """HTTP client of an OpenAI-compatible chat server (vLLM, TGI, another llava worker)."""

    name = "openai"

    def __init__(self, settings: LlavaSettings) -> None:
        if not settings.upstream_url:
            raise ValueError(
                "LLAVA_BACKEND=openai needs LLAVA_UPSTREAM_URL (e.g. http://vllm:8000/v1)"
            )
        self.settings = settings
        self.base_url = settings.upstream_url.rstrip("/")
        self.upstream_model: str | None = settings.upstream_model
        self._client: httpx.AsyncClient | None = None

    @property
    def model_id(self) -> str:
        return self.settings.served_model_name or self.upstream_model or "llava"

    def _headers(self) -> dict[str, str]:
        headers = {"X-Request-ID": request_id_var.get()}
        if self.settings.upstream_api_key is not None:
            headers["Authorization"] = f"Bearer {self.settings.upstream_api_key.get_secret_value()}"
        return headers

    # -- lifecycle (worker threads) ------------------------------------------------------------
    def load(self) -> None:
        """Wait until the upstream lists its models (vLLM may take minutes to load its own)."""
        deadline = time.monotonic() + self.settings.upstream_wait_s
        last = ""
        while True:
            try:
                r = httpx.get(f"{self.base_url}/models", headers=self._headers(), timeout=5)
                if r.status_code == 200:
                    data = r.json().get("data") or []
                    if self.upstream_model is None and data:
                        self.upstream_model = str(data[0]["id"])
                    log.info("upstream %s ready, model %s", self.base_url, self.upstream_model)
                    return
                last = f"HTTP {r.status_code}"
            except (httpx.HTTPError, httpx.InvalidURL, ValueError, KeyError, TypeError) as e:
                last = f"{type(e).__name__}: {e}"
            if time.monotonic() > deadline:
                raise ServiceUnavailable(
                    f"Upstream {self.base_url} did not answer /models within "
                    f"{self.settings.upstream_wait_s:.0f}s ({last}).",
                    code="upstream_unavailable",
                )
            time.sleep(1.0)

    def warmup(self) -> None:
        """Nothing to warm: the upstream owns the model."""

    def info(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.model_id,
            "upstream_url": self.base_url,
            "upstream_model": self.upstream_model,
            "device": "upstream",
            "dtype": "upstream",
            "quantization": None,  # the upstream owns the model (and its weights' format)
            "max_images": self.settings.max_images,
            "image_policy": self.settings.image_policy,
        }

    # -- calls (event loop) -------------------------------------------------------------------
    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            # No read timeout of its own: each call is bounded by the request's deadline.
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(None, connect=10.0),
                limits=httpx.Limits(max_connections=max(16, self.settings.max_concurrency * 2)),
            )
        return self._client

    def body(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self.upstream_model:
            payload["model"] = self.upstream_model
        return payload

    async def _error(self, r: httpx.Response) -> LviError:
        """Map an upstream failure: its 4xx are the client's fault and pass through as they are;
        anything else is our upstream failing (502)."""
        raw = await r.aread()
        detail: dict[str, Any] = {}
        try:
            parsed = json.loads(raw)
            err = parsed.get("error") if isinstance(parsed, dict) else None
            if isinstance(err, dict):
                detail = err
            elif isinstance(parsed, dict) and "message" in parsed:  # vLLM's older flat shape
                detail = parsed
        except ValueError:
            pass
        headers = {k: v for k, v in r.headers.items() if k.lower() in PASSED_HEADERS}
        if 400 <= r.status_code < 500 and r.status_code != 401 and r.status_code != 403:
            return UpstreamError(r.status_code, detail, headers)
        if r.status_code == 503:
            return ServiceUnavailable(
                "The upstream model server is not ready.",
                code="upstream_unavailable",
                headers=headers,
            )
        msg = detail.get("message") or f"HTTP {r.status_code}"
        log.warning("upstream error %s: %s", r.status_code, msg)
        return BadGateway(
            f"The upstream model server failed ({r.status_code}).", code="upstream_error"
        )

    def _timeout_headers(self, remaining: float) -> dict[str, str]:
        # The upstream (vLLM ignores it; another llava worker honours it) gets what is left.
        return {**self._headers(), "X-Request-Timeout": f"{remaining:.3f}"}

    @staticmethod
    def _unreachable(e: httpx.HTTPError) -> LviError:
        """A call that got no answer: past the request's deadline (504), else a 502."""
        if isinstance(e, httpx.TimeoutException):
            return DeadlineExceeded("The upstream did not answer before the request's deadline.")
        return BadGateway(
            f"The upstream model server is unreachable ({type(e).__name__}).",
            code="upstream_unreachable",
        )

    async def complete(
        self, payload: dict[str, Any], remaining: float
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Non-streaming call: the upstream's JSON and the headers worth passing on."""
        remaining = max(0.001, remaining)
        try:
            r = await self.client.post(
                f"{self.base_url}/chat/completions",
                json=self.body(payload),
                headers=self._timeout_headers(remaining),
                timeout=httpx.Timeout(remaining, connect=min(10.0, remaining)),
            )
        except httpx.HTTPError as e:
            raise self._unreachable(e) from None
        if r.status_code != 200:
            raise await self._error(r)
        try:
            data = r.json()
        except ValueError:
            raise BadGateway(
                "The upstream answered with something that is not JSON.", code="upstream_error"
            ) from None
        headers = {k: v for k, v in r.headers.items() if k.lower() in PASSED_HEADERS}
        return data, headers

    async def open_stream(
        self, payload: dict[str, Any], remaining: float
    ) -> tuple[httpx.Response, dict[str, str]]:
        """Start a streaming call; errors before the first byte raise as envelopes."""
        remaining = max(0.001, remaining)
        req = self.client.build_request(
            "POST",
            f"{self.base_url}/chat/completions",
            json=self.body(payload),
            headers={**self._timeout_headers(remaining), "Accept": "text/event-stream"},
            timeout=httpx.Timeout(remaining, connect=min(10.0, remaining)),
        )
        try:
            r = await self.client.send(req, stream=True)
        except httpx.HTTPError as e:
            raise self._unreachable(e) from None
        if r.status_code != 200:
            try:
                raise await self._error(r)
            finally:
                await r.aclose()
        headers = {k: v for k, v in r.headers.items() if k.lower() in PASSED_HEADERS}
        return r, headers

    @staticmethod
    async def events(r: httpx.Response) -> AsyncIterator[str]:
        """The ``data:`` payloads of an SSE stream, up to (not including) ``[DONE]``."""
        try:
            # Decoded by httpx-sse, like the gateway's worker streams; a reply that is not an
            # event stream raises SSEError (an httpx.TransportError) and ends as a 502 below.
            async for ev in EventSource(r).aiter_sse():
                data = ev.data.strip()
                if not data:
                    continue  # an event without data (comments like ": ping" never reach here)
                if data == "[DONE]":
                    return
                try:
                    parsed = json.loads(data)
                except ValueError:
                    raise BadGateway(
                        "The upstream sent a malformed stream event.", code="upstream_error"
                    ) from None
                if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
                    # The status line is long gone: relay the envelope as the stream's end.
                    raise UpstreamError(502, parsed["error"], {})
                yield data
        except httpx.TimeoutException:
            raise DeadlineExceeded("The upstream stream passed the request's deadline.") from None
        except httpx.HTTPError as e:
            raise BadGateway(
                f"The upstream stream broke ({type(e).__name__}).", code="upstream_error"
            ) from None
