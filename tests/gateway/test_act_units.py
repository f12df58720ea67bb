"""Chat act's pure parts: which instance a segment step keeps, the note LLaVA is told, the
contract's validation, and the planner settings documented in .env.example."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from support.procs import ServerProcess

from gateway.app import create_app
from gateway.planner import PlannerSettings, make_planner
from gateway.workflows.act import told
from gateway.workflows.executor import pick_instance
from lvi.contracts import seem
from lvi.errors import Unprocessable
from lvi_client import LviClient, NotFoundError
from lvi_client.models import Action, ChatRequest, PlanRequest

from .conftest import DEAD_URL, gateway_settings

ROOT = Path(__file__).resolve().parents[2]
W, H = 100, 60


def _mask(box: list[int]) -> seem.SegmentMask:
    m = np.zeros((H, W), bool)
    m[box[1] : box[3], box[0] : box[2]] = True
    return seem.SegmentMask(
        mask=_png(m),
        score=0.5,
        bbox=box,
        area=int(m.sum()),
    )


def _png(m: np.ndarray) -> str:
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((m * 255).astype(np.uint8), "L").save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


LEFT, RIGHT, BIG = [0, 10, 20, 30], [80, 0, 100, 20], [30, 20, 70, 60]


@pytest.mark.parametrize(
    ("select", "want"),
    [
        ("all", LEFT),
        ("left", LEFT),
        ("right", RIGHT),
        ("top", RIGHT),
        ("bottom", BIG),
        ("center", BIG),
        ("largest", BIG),
        ("smallest", LEFT),
    ],
)
def test_pick_instance_by_position_and_size(select: str, want: list[int]) -> None:
    masks = [_mask(LEFT), _mask(RIGHT), _mask(BIG)]
    assert pick_instance(select)(masks).bbox == want


def test_pick_instance_refuses_an_empty_mask() -> None:
    empty = seem.SegmentMask(mask=_png(np.zeros((H, W), bool)), score=1, bbox=[0, 0, 0, 0], area=0)
    with pytest.raises(Unprocessable) as e:
        pick_instance("all")([empty])
    assert e.value.code == "empty_mask"


def test_told_lists_what_ran_and_what_failed() -> None:
    done = Action(index=0, tool="segment", status="done", summary="Segmented 'dog' (mask m_1).")
    failed = Action(index=1, tool="remove", status="failed", summary="Remove failed: busy.")
    skipped = Action(index=2, tool="undo", status="skipped", summary="Undo: skipped.")
    note = told([done, failed, skipped])
    assert "Segmented 'dog'" in note and "Remove failed" in note and "skipped" not in note
    assert "tell the user what failed" in note
    assert "failed" not in told([done])


def test_visual_prompts_go_with_act_only() -> None:
    ChatRequest(message="remove this", act=True, points=[[1, 2]], labels=[1])
    with pytest.raises(ValidationError):
        ChatRequest(message="remove this", points=[[1, 2]])
    with pytest.raises(ValidationError):
        PlanRequest(message="remove this", points=[[1, 2]], labels=[1, 0])


def test_planner_settings_are_in_env_example() -> None:
    text = (ROOT / ".env.example").read_text()
    have = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, re.M))
    missing = [f"GATEWAY_PLANNER_{f.upper()}" for f in PlannerSettings.model_fields]
    assert not [v for v in missing if v not in have]


def test_plan_route_with_an_llm_planner_that_is_down_falls_back_to_rules(
    redis_server: ServerProcess,
) -> None:
    settings = gateway_settings(redis_server.url)
    planner = make_planner(PlannerSettings(kind="llm", url=DEAD_URL + "/v1", timeout_s=2))
    with TestClient(create_app(settings, planner=planner), base_url="http://gateway") as tc:
        lvi = LviClient("http://gateway", "alice-key", http_client=tc)  # type: ignore[arg-type]
        s = lvi.create_session("llm down")
        p = lvi.plan(s.id, "draw an image of a cat on a sofa")
        assert p.planner == "rules" and p.fallback_reason is not None
        assert p.fallback_reason.startswith("unreachable")
        assert [a.tool for a in p.actions] == ["generate"]
        # Another principal's session does not exist for this caller.
        bob = LviClient("http://gateway", "bob-key", http_client=tc)  # type: ignore[arg-type]
        with pytest.raises(NotFoundError):
            bob.plan(s.id, "undo")
