"""The rules planner against the data-driven test set (tests/gateway/planner/cases.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from gateway.planner.rules import RulesPlanner
from gateway.planner.steps import Plan, PlanContext, misfit
from tests.gateway.planner.cases import ASK, CASES, CONTEXTS, Case

PLANNER = RulesPlanner()


def mismatch(plan: Plan, expected: Any) -> str | None:
    """Why ``plan`` differs from ``expected`` (None when it matches)."""
    if isinstance(expected, tuple) and expected[0] == ASK:
        if plan.steps or plan.clarification is None:
            return f"expected a question containing {expected[1]!r}, got {plan!r}"
        if expected[1].lower() not in plan.clarification.lower():
            return f"question {plan.clarification!r} lacks {expected[1]!r}"
        return None
    if plan.clarification is not None:
        return f"unexpected question {plan.clarification!r}"
    tools = [s.tool for s in plan.steps]
    if tools != [t for t, _ in expected]:
        return f"tools {tools} != {[t for t, _ in expected]}: {plan.steps!r}"
    for step, (tool, args) in zip(plan.steps, expected, strict=True):
        for key, value in args.items():
            if getattr(step, key) != value:
                return f"{tool}.{key} = {getattr(step, key)!r}, expected {value!r}"
    return None


def test_the_set_has_at_least_80_messages() -> None:
    assert len(CASES) >= 80
    assert len({(m, c) for m, c, _ in CASES}) == len(CASES), "duplicate cases"


@pytest.mark.parametrize("case", CASES, ids=[f"{c}:{m[:40]}" for m, c, _ in CASES])
def test_case(case: Case) -> None:
    message, context, expected = case
    problem = mismatch(PLANNER.plan_sync(message, CONTEXTS[context]), expected)
    assert problem is None, problem


def test_score(capsys: pytest.CaptureFixture[str]) -> None:
    """The whole set's score, printed (run with -s to see it)."""
    failed = [
        (m, c, why)
        for m, c, expected in CASES
        if (why := mismatch(PLANNER.plan_sync(m, CONTEXTS[c]), expected)) is not None
    ]
    with capsys.disabled():
        print(f"\nrules planner: {len(CASES) - len(failed)}/{len(CASES)} messages planned exactly")
        for m, c, why in failed:
            print(f"  FAIL [{c}] {m!r}: {why}")
    assert not failed


def test_plans_are_valid_models_and_planner_named() -> None:
    for message, context, _ in CASES:
        plan = PLANNER.plan_sync(message, CONTEXTS[context])
        assert plan.planner == "rules"
        assert plan.fallback_reason is None
        Plan.model_validate(plan.model_dump())
        assert misfit(plan, CONTEXTS[context]) is None, message


@pytest.mark.parametrize(
    "message",
    [
        "remove the dog " * 700,
        "a" * 10_000,
        "move " + "left " * 2000,
        "and " * 2500,
        "replace " + "the cat with " * 800,
        "add a dog on the left, " * 450,
        "?" * 10_000,
        ". " * 5000,
        "remove the " + "big " * 2400 + "dog",
        "add a dog " + "in the " * 1400,
        "move the cat " + "to the " * 1400 + "left",
        "move " + "a bit " * 1600 + "left",
        "undo " * 2000,
        "remove it, " * 900,
    ],
)
def test_10k_messages_are_bounded(message: str) -> None:
    message = message[:10_000]
    start = time.perf_counter()
    plan = PLANNER.plan_sync(message, PlanContext(width=640, height=480))
    # Generous bound: the point is no catastrophic backtracking (that takes minutes).
    assert time.perf_counter() - start < 2.0
    assert len(plan.steps) <= 16


def test_async_interface() -> None:
    import asyncio

    plan = asyncio.run(PLANNER.plan("remove the dog", PlanContext(width=10, height=10)))
    assert [s.tool for s in plan.steps] == ["segment", "remove"]
