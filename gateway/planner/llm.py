"""The ``llm`` planner: any OpenAI-compatible endpoint with tool calling (vLLM, llama.cpp's
server, Ollama, OpenAI...), given the step models as tools; the rules planner answers instead
whenever the endpoint fails in any way, and ``Plan.fallback_reason`` says why.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from pydantic import ValidationError

from gateway.planner.base import PlannerSettings
from gateway.planner.rules import NO_IMAGE, RulesPlanner
from gateway.planner.steps import (
    ASK_USER_TOOL,
    STEP_ADAPTER,
    STEP_MODELS,
    Plan,
    PlanContext,
    Step,
    misfit,
    openai_tools,
)

SYSTEM_PROMPT = """You plan image edits for an image editing chat. Call the tools, in order, \
that do what the user's message asks, or call no tool when the message is a question or a \
description. Pixel coordinates are of the current image. An edit on an object first calls \
segment (text = the object's name, select = which one), then remove/replace/move with \
mask="previous". When the user says it/this/that and sent a click, box or stroke, segment with \
those; without them, use mask="last" if a last mask exists. When a needed part is missing \
(what to remove, what to replace it with, where to move or add), call ask_user instead. \
Never act on anything but this session's image."""


class PlannerError(Exception):
    """Why the endpoint's answer was not used (becomes ``fallback_reason``)."""


class LlmPlanner:
    """Plans through an OpenAI-compatible chat completions endpoint with tool calling."""

    name = "llm"

    def __init__(
        self, settings: PlannerSettings, *, http_client: httpx.AsyncClient | None = None
    ) -> None:
        self.settings = settings
        self._client = http_client
        self._tools = openai_tools()
        self._rules = RulesPlanner()

    async def plan(self, message: str, context: PlanContext) -> Plan:
        try:
            return await self._plan(message, context)
        except PlannerError as e:
            reason = str(e)
        except httpx.TimeoutException:
            reason = f"timeout after {self.settings.timeout_s:g}s"
        except httpx.HTTPError as e:
            reason = f"unreachable: {type(e).__name__}: {e}"[:300]
        plan = await self._rules.plan(message, context)
        return plan.model_copy(update={"fallback_reason": reason})

    def _request(self, message: str, context: PlanContext) -> dict[str, Any]:
        state = {
            "image": {"width": context.width, "height": context.height}
            if context.has_image
            else None,
            "has_last_mask": context.has_mask,
            "clicks": [
                {"x": p[0], "y": p[1], "label": (context.labels or [1] * len(context.points))[i]}
                for i, p in enumerate(context.points)
            ],
            "boxes": context.boxes,
            "stroke": context.stroke,
        }
        return {
            "model": self.settings.model,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": f"Session state: {json.dumps(state)}\n\n{message}"},
            ],
            "tools": self._tools,
            "tool_choice": "auto",
            "temperature": 0,
            "max_tokens": self.settings.max_tokens,
        }

    async def _post(self, body: dict[str, Any]) -> httpx.Response:
        headers = {}
        if self.settings.api_key is not None:
            headers["Authorization"] = f"Bearer {self.settings.api_key.get_secret_value()}"
        url = self.settings.url.rstrip("/") + "/chat/completions"
        timeout = httpx.Timeout(self.settings.timeout_s)
        if self._client is not None:
            return await self._client.post(url, json=body, headers=headers, timeout=timeout)
        async with httpx.AsyncClient(timeout=timeout) as client:
            return await client.post(url, json=body, headers=headers)

    async def _plan(self, message: str, context: PlanContext) -> Plan:
        if not message.strip():
            return Plan(steps=[], planner=self.name)
        response = await self._post(self._request(message, context))
        if response.status_code != 200:
            raise PlannerError(f"endpoint answered HTTP {response.status_code}")
        try:
            choice = response.json()["choices"][0]["message"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise PlannerError("endpoint answer is not a chat completion")
        steps: list[Step] = []
        clarification: str | None = None
        for call in choice.get("tool_calls") or []:
            try:
                name = call["function"]["name"]
                raw = call["function"].get("arguments") or "{}"
            except (KeyError, TypeError):
                raise PlannerError("malformed tool call")
            try:
                args = json.loads(raw) if isinstance(raw, str) else raw
            except ValueError:
                raise PlannerError(f"invalid JSON in the arguments of {name!r}")
            if not isinstance(args, dict):
                raise PlannerError(f"arguments of {name!r} are not an object")
            if name == ASK_USER_TOOL:
                question = args.get("question")
                if not isinstance(question, str) or not question.strip():
                    raise PlannerError("ask_user without a question")
                clarification = question.strip()[:1000]
                continue
            if name not in STEP_MODELS:
                raise PlannerError(f"unknown tool {str(name)[:64]!r}")
            try:
                steps.append(STEP_ADAPTER.validate_python({**args, "tool": name}))
            except ValidationError as e:
                raise PlannerError(f"invalid arguments for {name!r}: {e.errors()[0]['msg']}")
        if clarification is not None:
            return Plan(steps=[], clarification=clarification, planner=self.name)
        if not context.has_image and steps and steps[0].tool != "generate":
            return Plan(steps=[], clarification=NO_IMAGE, planner=self.name)
        try:
            plan = Plan(steps=steps, planner=self.name)
        except ValidationError as e:
            raise PlannerError(f"invalid plan: {e.errors()[0]['msg']}")
        problem = misfit(plan, context)
        if problem is not None:
            raise PlannerError(f"plan does not fit the session: {problem}")
        return plan
