"""Chat that acts: turn a message (plus the session's state) into a typed plan of edit steps.

``make_planner(PlannerSettings())`` gives the ``rules`` planner (default) or the ``llm`` one;
both answer :class:`Plan` built from the models in :mod:`gateway.planner.steps`.
"""

from gateway.planner.base import Planner, PlannerSettings, make_planner
from gateway.planner.steps import (
    GenerateStep,
    InpaintStep,
    MoveStep,
    Plan,
    PlanContext,
    RedoStep,
    RemoveStep,
    ReplaceStep,
    SegmentStep,
    Step,
    UndoStep,
    openai_tools,
    place_relative,
)

__all__ = [
    "GenerateStep",
    "InpaintStep",
    "MoveStep",
    "Plan",
    "PlanContext",
    "Planner",
    "PlannerSettings",
    "RedoStep",
    "RemoveStep",
    "ReplaceStep",
    "SegmentStep",
    "Step",
    "UndoStep",
    "make_planner",
    "openai_tools",
    "place_relative",
]
