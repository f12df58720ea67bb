"""The typed plan: step validation, plan references, box placement, generated tool schemas."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.planner.steps import (
    STEP_ADAPTER,
    STEP_MODELS,
    GenerateStep,
    InpaintStep,
    Plan,
    PlanContext,
    RemoveStep,
    SegmentStep,
    UndoStep,
    clamp_box,
    misfit,
    openai_tools,
    place_relative,
)


def test_segment_needs_a_prompt_and_matching_labels() -> None:
    with pytest.raises(ValidationError):
        SegmentStep()
    with pytest.raises(ValidationError):
        SegmentStep(points=[[1, 2]], labels=[1, 0])
    assert SegmentStep(stroke=True).select == "all"


def test_inpaint_boxes_or_anchor() -> None:
    with pytest.raises(ValidationError):
        InpaintStep(phrases=["a", "b"], boxes=[[0, 0, 1, 1]])
    with pytest.raises(ValidationError):
        InpaintStep(phrases=["a"], boxes=[[0, 0, 1, 1]], anchor="previous")
    with pytest.raises(ValidationError):
        InpaintStep(phrases=["a"], boxes=[[0, 0, 1, 1]], relation="on")
    assert InpaintStep(phrases=["hat"], anchor="last").relation == "next_to"


def test_unknown_fields_and_tools_are_refused() -> None:
    with pytest.raises(ValidationError):
        STEP_ADAPTER.validate_python({"tool": "remove", "session": "other"})
    with pytest.raises(ValidationError):
        STEP_ADAPTER.validate_python({"tool": "delete_session"})
    step = STEP_ADAPTER.validate_python({"tool": "move", "dx": 3, "dy": -4})
    assert step.tool == "move" and step.mask == "previous"


def test_previous_mask_needs_an_earlier_segment() -> None:
    with pytest.raises(ValidationError):
        Plan(steps=[RemoveStep()], planner="x")
    with pytest.raises(ValidationError):
        Plan(steps=[InpaintStep(phrases=["hat"], anchor="previous")], planner="x")
    Plan(steps=[RemoveStep(mask="last")], planner="x")
    plan = Plan(steps=[SegmentStep(text="dog"), RemoveStep()], planner="x")
    assert Plan.model_validate_json(plan.model_dump_json()) == plan


def test_context_validation() -> None:
    with pytest.raises(ValidationError):
        PlanContext(width=10, height=10, points=[[1, 1]], labels=[1, 1])
    with pytest.raises(ValidationError):
        PlanContext(width=10)
    ctx = PlanContext(width=10, height=10, boxes=[[1, 2, 3, 4]])
    assert ctx.has_image and ctx.has_visual_prompt
    assert ctx.visual_segment().boxes == [[1, 2, 3, 4]]
    assert not PlanContext().has_image


@pytest.mark.parametrize(
    ("relation", "expected"),
    [
        ("right_of", [300, 100, 400, 200]),
        ("left_of", [100, 100, 200, 200]),
        ("above", [200, 0, 300, 100]),
        ("below", [200, 200, 300, 300]),
        ("next_to", [300, 100, 400, 200]),
        ("in", [225, 125, 275, 175]),
    ],
)
def test_place_relative(relation: Any, expected: list[int]) -> None:
    assert place_relative(relation, [200, 100, 300, 200], 1000, 600) == expected


def test_place_relative_stays_inside_and_goes_left_when_no_room() -> None:
    assert place_relative("next_to", [850, 0, 1000, 100], 1000, 600) == [700, 0, 850, 100]
    for rel in ("right_of", "left_of", "above", "below", "on", "in", "next_to"):
        x0, y0, x1, y1 = place_relative(rel, [0, 0, 1000, 600], 1000, 600)
        assert 0 <= x0 < x1 <= 1000 and 0 <= y0 < y1 <= 600
    assert clamp_box([-5, -5, 2000, 2000], 100, 50) == [0, 0, 100, 50]


def test_openai_tools_mirror_the_models() -> None:
    tools = openai_tools()
    names = [t["function"]["name"] for t in tools]
    assert names == [*STEP_MODELS, "ask_user"]
    text = json.dumps(tools)
    assert "$ref" not in text and "$defs" not in text
    for tool in tools:
        params = tool["function"]["parameters"]
        assert params["type"] == "object" and "tool" not in params["properties"]
        assert params["additionalProperties"] is False
        assert tool["function"]["description"]
    move = next(t for t in tools if t["function"]["name"] == "move")["function"]["parameters"]
    assert set(move["required"]) == {"dx", "dy"}
    replace = next(t for t in tools if t["function"]["name"] == "replace")["function"]
    assert replace["parameters"]["required"] == ["phrase"]


def test_misfit() -> None:
    none, img = PlanContext(), PlanContext(width=8, height=8)
    assert misfit(Plan(steps=[UndoStep()], planner="x"), none) is not None
    assert misfit(Plan(steps=[GenerateStep(prompt="a"), UndoStep()], planner="x"), none) is None
    assert misfit(Plan(steps=[RemoveStep(mask="last")], planner="x"), img) is not None
    with_mask = PlanContext(width=8, height=8, has_mask=True)
    assert misfit(Plan(steps=[RemoveStep(mask="last")], planner="x"), with_mask) is None
    assert misfit(Plan(steps=[SegmentStep(stroke=True)], planner="x"), img) is not None


def test_actions_shape() -> None:
    plan = Plan(steps=[SegmentStep(text="dog", select="left"), RemoveStep()], planner="rules")
    assert plan.actions() == [
        {
            "tool": "segment",
            "args": {
                "text": "dog",
                "points": [],
                "labels": None,
                "boxes": [],
                "stroke": False,
                "select": "left",
            },
        },
        {"tool": "remove", "args": {"mask": "previous", "dilate": 10}},
    ]
    for action in plan.actions():
        assert STEP_ADAPTER.validate_python({"tool": action["tool"], **action["args"]})
