"""The llm planner against a fake OpenAI-compatible server (a real uvicorn process on loopback):
valid tool calls are used; every failure falls back to the rules planner, saying why."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from support.procs import ServerProcess, free_port

from gateway.planner import PlanContext, PlannerSettings, make_planner
from gateway.planner.llm import LlmPlanner
from gateway.planner.rules import RulesPlanner
from gateway.planner.steps import Plan, openai_tools

HERE = Path(__file__).parent
CTX = PlanContext(width=640, height=480)
MESSAGE = "remove the dog"  # what rules plans when the endpoint fails


@pytest.fixture(scope="module")
def fake_openai(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    port = free_port()
    srv = ServerProcess(
        name="fake-openai",
        args=[
            sys.executable,
            "-m",
            "uvicorn",
            "fake_openai:app",
            "--app-dir",
            str(HERE),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env={"PATH": "/usr/bin:/bin"},
        port=port,
        log_path=tmp_path_factory.mktemp("fake-openai") / "server.log",
        ready_path="/health",
    )
    srv.start(timeout=60)
    yield srv
    srv.stop()


def plan(url: str, model: str, message: str = MESSAGE, timeout: float = 5.0) -> Plan:
    settings = PlannerSettings(
        kind="llm", url=url + "/v1", model=model, api_key=SecretStr("k-123"), timeout_s=timeout
    )
    planner = make_planner(settings)
    assert isinstance(planner, LlmPlanner)
    return asyncio.run(planner.plan(message, CTX))


def rules_steps(message: str = MESSAGE) -> list[str]:
    return [s.tool for s in RulesPlanner().plan_sync(message, CTX).steps]


def test_valid_tool_calls_become_the_plan(fake_openai: ServerProcess) -> None:
    p = plan(fake_openai.url, "valid")
    assert p.planner == "llm" and p.fallback_reason is None
    assert [s.tool for s in p.steps] == ["segment", "remove"]
    assert p.steps[0].model_dump()["text"] == "tree"
    assert p.steps[0].model_dump()["select"] == "left"
    seen = httpx.get(fake_openai.url + "/last").json()
    assert seen["authorization"] == "Bearer k-123"
    assert seen["body"]["tools"] == openai_tools()
    assert "640" in seen["body"]["messages"][-1]["content"]


def test_ask_user_is_a_clarification(fake_openai: ServerProcess) -> None:
    p = plan(fake_openai.url, "ask")
    assert p.steps == [] and p.clarification == "Which tree?" and p.fallback_reason is None


def test_no_tool_calls_is_plain_chat(fake_openai: ServerProcess) -> None:
    p = plan(fake_openai.url, "no-tools", "what is this?")
    assert p.steps == [] and p.clarification is None and p.fallback_reason is None


@pytest.mark.parametrize(
    ("model", "reason"),
    [
        ("invalid-json", "invalid JSON"),
        ("unknown-tool", "unknown tool 'delete_session'"),
        ("invalid-args", "invalid arguments for 'move'"),
        ("dangling-mask", "invalid plan"),
        ("last-mask", "uses the last mask and the session has none"),
        ("not-a-completion", "not a chat completion"),
        ("http500", "HTTP 500"),
    ],
)
def test_bad_answers_fall_back_to_rules(
    fake_openai: ServerProcess, model: str, reason: str
) -> None:
    p = plan(fake_openai.url, model)
    assert p.fallback_reason is not None and reason in p.fallback_reason, p.fallback_reason
    assert p.planner == "rules"
    assert [s.tool for s in p.steps] == rules_steps() == ["segment", "remove"]


def test_slow_endpoint_times_out_and_falls_back(fake_openai: ServerProcess) -> None:
    loop_start = asyncio.run(_timed(fake_openai.url))
    p, elapsed = loop_start
    assert p.fallback_reason is not None and p.fallback_reason.startswith("timeout")
    assert [s.tool for s in p.steps] == ["segment", "remove"]
    assert elapsed < 4.0  # the fake sleeps 5 s; the planner gave up after 0.5 s


async def _timed(url: str) -> tuple[Plan, float]:
    settings = PlannerSettings(kind="llm", url=url + "/v1", model="slow", timeout_s=0.5)
    loop = asyncio.get_running_loop()
    start = loop.time()
    p = await make_planner(settings).plan(MESSAGE, CTX)
    return p, loop.time() - start


def test_down_endpoint_falls_back() -> None:
    p = plan(f"http://127.0.0.1:{free_port()}", "valid")  # nothing listens there
    assert p.fallback_reason is not None and p.fallback_reason.startswith("unreachable")
    assert [s.tool for s in p.steps] == ["segment", "remove"]


def test_fallback_keeps_clarifications(fake_openai: ServerProcess) -> None:
    p = plan(fake_openai.url, "unknown-tool", "replace the horse")
    assert p.clarification is not None and "replace the horse with" in p.clarification
    assert p.fallback_reason is not None


def test_injected_client_is_used(fake_openai: ServerProcess) -> None:
    async def run() -> Plan:
        async with httpx.AsyncClient() as client:
            settings = PlannerSettings(kind="llm", url=fake_openai.url + "/v1", model="valid")
            return await make_planner(settings, http_client=client).plan(MESSAGE, CTX)

    assert [s.tool for s in asyncio.run(run()).steps] == ["segment", "remove"]


def test_an_edit_without_an_image_asks_for_one(fake_openai: ServerProcess) -> None:
    settings = PlannerSettings(kind="llm", url=fake_openai.url + "/v1", model="edit-no-image")
    p = asyncio.run(make_planner(settings).plan("undo", PlanContext()))
    assert p.steps == [] and p.clarification is not None and "no image" in p.clarification
    assert p.planner == "llm" and p.fallback_reason is None


def test_default_is_rules() -> None:
    assert isinstance(make_planner(PlannerSettings()), RulesPlanner)
    assert isinstance(make_planner(), RulesPlanner)
