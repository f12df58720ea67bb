"""The typed plan: one pydantic model per step, the :class:`Plan`, and the :class:`PlanContext`.

Both planners produce these models, and the ``llm`` planner's tool definitions are generated
from them (:func:`openai_tools`), so there is one source of truth for what a step may say.

Coordinates are pixels of the session's head image. A step that needs a mask names it with
``mask``: ``"previous"`` is the mask made by the latest ``segment`` step *earlier in the same
plan*; ``"last"`` is the session's last mask as it was when the plan started (the message said
"it"/"this"/"that" and came with no click, box or stroke).
"""

from __future__ import annotations

import copy
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

Coord = Annotated[float, Field(ge=-1e6, le=1e6)]
Point = Annotated[list[Coord], Field(min_length=2, max_length=2)]
Box = Annotated[list[Coord], Field(min_length=4, max_length=4, description="[x0, y0, x1, y1]")]
Phrase = Annotated[str, Field(min_length=1, max_length=256)]

MaskRef = Literal["previous", "last"]
Select = Literal["all", "left", "right", "top", "bottom", "center", "largest", "smallest"]
Relation = Literal["next_to", "left_of", "right_of", "above", "below", "on", "in"]

MASK_DESCRIPTION = (
    "Which mask: 'previous' = the mask of the latest segment step before this one in the "
    "plan; 'last' = the session's last mask (the user said it/this/that and sent no click)."
)


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SegmentStep(_Step):
    """Find an object and make its mask: by referring text, or by the user's click/box/stroke."""

    tool: Literal["segment"] = "segment"
    text: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="What to find ('dog'; 'cat. dog' for two).",
    )
    points: list[Point] = Field(default_factory=list, max_length=64)
    labels: list[Literal[0, 1]] | None = Field(
        default=None, description="1 include, 0 exclude per point."
    )
    boxes: list[Box] = Field(default_factory=list, max_length=16)
    stroke: bool = Field(
        default=False, description="Use the stroke (scribble) sent with the message."
    )
    select: Select = Field(
        default="all",
        description="All instances found, or the one at this position / of this size.",
    )

    @model_validator(mode="after")
    def _has_prompt(self) -> SegmentStep:
        if not (self.text or self.points or self.boxes or self.stroke):
            raise ValueError("segment needs text, points, boxes or stroke")
        if self.labels is not None and len(self.labels) != len(self.points):
            raise ValueError("labels must have one entry per point")
        return self


class RemoveStep(_Step):
    """Erase the masked object and fill the background where it was."""

    tool: Literal["remove"] = "remove"
    mask: MaskRef = Field(default="previous", description=MASK_DESCRIPTION)
    dilate: int = Field(default=10, ge=0, le=256, description="Grow the mask by this many pixels.")


class ReplaceStep(_Step):
    """Redraw the masked object as something else (grounded inpainting in its box)."""

    tool: Literal["replace"] = "replace"
    mask: MaskRef = Field(default="previous", description=MASK_DESCRIPTION)
    phrase: Phrase = Field(description="What to draw instead ('a red car').")


class MoveStep(_Step):
    """Move the masked object by (dx, dy) pixels; its old place is filled."""

    tool: Literal["move"] = "move"
    mask: MaskRef = Field(default="previous", description=MASK_DESCRIPTION)
    dx: int = Field(ge=-16384, le=16384, description="Pixels to the right (negative: left).")
    dy: int = Field(ge=-16384, le=16384, description="Pixels down (negative: up).")


class InpaintStep(_Step):
    """Add new objects: one phrase per box (pixels), or one phrase placed relative to a mask."""

    tool: Literal["inpaint"] = "inpaint"
    phrases: list[Phrase] = Field(min_length=1, max_length=8)
    boxes: list[Box] = Field(default_factory=list, max_length=8)
    anchor: MaskRef | None = Field(
        default=None, description="Place the one phrase relative to this mask instead of a box."
    )
    relation: Relation | None = Field(
        default=None, description="Where, relative to the anchor's box."
    )

    @model_validator(mode="after")
    def _boxes_or_anchor(self) -> InpaintStep:
        if self.anchor is None:
            if len(self.boxes) != len(self.phrases):
                raise ValueError("inpaint needs one box per phrase")
            if self.relation is not None:
                raise ValueError("relation needs an anchor")
        else:
            if self.boxes or len(self.phrases) != 1:
                raise ValueError("an anchored inpaint has one phrase and no boxes")
            if self.relation is None:
                self.relation = "next_to"
        return self


class GenerateStep(_Step):
    """Make a new image from a description (replaces the head with a new version)."""

    tool: Literal["generate"] = "generate"
    prompt: str = Field(min_length=1, max_length=1000)
    phrases: list[Phrase] = Field(default_factory=list, max_length=8)
    boxes: list[Box] = Field(default_factory=list, max_length=8)

    @model_validator(mode="after")
    def _pairs(self) -> GenerateStep:
        if len(self.boxes) != len(self.phrases):
            raise ValueError("generate needs one box per phrase")
        return self


class UndoStep(_Step):
    """Move the head back one version."""

    tool: Literal["undo"] = "undo"


class RedoStep(_Step):
    """Move the head forward one version."""

    tool: Literal["redo"] = "redo"


Step = Annotated[
    SegmentStep
    | RemoveStep
    | ReplaceStep
    | MoveStep
    | InpaintStep
    | GenerateStep
    | UndoStep
    | RedoStep,
    Field(discriminator="tool"),
]
STEP_MODELS: dict[str, type[_Step]] = {
    "segment": SegmentStep,
    "remove": RemoveStep,
    "replace": ReplaceStep,
    "move": MoveStep,
    "inpaint": InpaintStep,
    "generate": GenerateStep,
    "undo": UndoStep,
    "redo": RedoStep,
}
STEP_ADAPTER: TypeAdapter[Step] = TypeAdapter(Step)
MASKED_TOOLS = frozenset({"remove", "replace", "move"})


class PlanContext(BaseModel):
    """What the planner may know about the session: head size, last mask, visual prompts."""

    model_config = ConfigDict(extra="forbid")

    width: int | None = Field(
        default=None, ge=1, description="Head image width; None: no image yet."
    )
    height: int | None = Field(default=None, ge=1)
    has_mask: bool = Field(default=False, description="The session has a last mask.")
    points: list[Point] = Field(default_factory=list, max_length=64)
    labels: list[Literal[0, 1]] | None = None
    boxes: list[Box] = Field(default_factory=list, max_length=16)
    stroke: bool = Field(default=False, description="A stroke mask came with the message.")

    @model_validator(mode="after")
    def _labels(self) -> PlanContext:
        if self.labels is not None and len(self.labels) != len(self.points):
            raise ValueError("labels must have one entry per point")
        if (self.width is None) != (self.height is None):
            raise ValueError("give both width and height, or neither")
        return self

    @property
    def has_image(self) -> bool:
        return self.width is not None and self.height is not None

    @property
    def has_visual_prompt(self) -> bool:
        return bool(self.points or self.boxes or self.stroke)

    def visual_segment(self) -> SegmentStep:
        """The segment step made of the visual prompts sent with the message."""
        labels = self.labels if self.labels is not None or not self.points else None
        return SegmentStep(
            points=[list(p) for p in self.points],
            labels=list(labels) if labels is not None else None,
            boxes=[list(b) for b in self.boxes],
            stroke=self.stroke,
        )


class Plan(BaseModel):
    """A planner's answer: steps to run in order, or a question to ask back, or neither (chat)."""

    steps: list[Step] = Field(default_factory=list)
    clarification: str | None = None
    planner: str
    fallback_reason: str | None = None

    def actions(self) -> list[dict[str, Any]]:
        """The steps as ``{"tool", "args"}`` (the shape of the API's ``actions``)."""
        return [
            {"tool": step.tool, "args": step.model_dump(mode="json", exclude={"tool"})}
            for step in self.steps
        ]

    @model_validator(mode="after")
    def _references(self) -> Plan:
        segmented = False
        for step in self.steps:
            ref = getattr(step, "mask", None) or getattr(step, "anchor", None)
            if ref == "previous" and not segmented:
                raise ValueError(f"{step.tool} refers to a previous segment step that is missing")
            segmented = segmented or step.tool == "segment"
        return self


def misfit(plan: Plan, context: PlanContext) -> str | None:
    """Why ``plan`` cannot run on a session in ``context`` (None when it can).

    Checks what the models alone cannot: a ``last`` mask the session lacks, a stroke that was
    not sent, an edit before any image exists (a ``generate`` step makes one).
    """
    has_image = context.has_image
    for step in plan.steps:
        if step.tool == "generate":
            has_image = True
            continue
        if not has_image:
            return f"{step.tool} needs an image and the session has none"
        ref = getattr(step, "mask", None) or getattr(step, "anchor", None)
        if ref == "last" and not context.has_mask:
            return f"{step.tool} uses the last mask and the session has none"
        if step.tool == "segment" and step.stroke and not context.stroke:
            return "segment uses a stroke and none was sent"
    return None


# -- placing boxes ------------------------------------------------------------------------------
def clamp_box(box: list[float], width: int, height: int) -> list[float]:
    x0, y0, x1, y1 = box
    x0, x1 = max(0.0, min(x0, width - 1.0)), max(1.0, min(x1, float(width)))
    y0, y1 = max(0.0, min(y0, height - 1.0)), max(1.0, min(y1, float(height)))
    return [round(x0), round(y0), round(max(x1, x0 + 1)), round(max(y1, y0 + 1))]


def place_relative(relation: Relation, bbox: list[float], width: int, height: int) -> list[float]:
    """The box for a new object placed ``relation`` to an object with ``bbox`` (pixels).

    The new box has the anchor's size (``on``: the anchor's top third sits under it; ``in``: the
    middle half of the anchor), and is clamped to the image. ``next_to`` goes right when there
    is room, else left. The executor calls this once the anchor's mask exists.
    """
    x0, y0, x1, y1 = bbox
    w, h = x1 - x0, y1 - y0
    if relation == "next_to":
        relation = "right_of" if width - x1 >= w or width - x1 >= x0 else "left_of"
    if relation == "right_of":
        box = [x1, y0, x1 + w, y1]
    elif relation == "left_of":
        box = [x0 - w, y0, x0, y1]
    elif relation == "above":
        box = [x0, y0 - h, x1, y0]
    elif relation == "below":
        box = [x0, y1, x1, y1 + h]
    elif relation == "on":
        box = [x0 + w / 4, y0 - h / 3, x1 - w / 4, y0 + h / 6]
    else:  # in
        box = [x0 + w / 4, y0 + h / 4, x1 - w / 4, y1 - h / 4]
    return clamp_box(box, width, height)


# -- OpenAI tool definitions ------------------------------------------------------------------
def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline_refs(copy.deepcopy(defs[ref.removeprefix("#/$defs/")]), defs)
        return {k: _inline_refs(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


ASK_USER_TOOL = "ask_user"


def openai_tools() -> list[dict[str, Any]]:
    """OpenAI ``tools`` (function calling) for every step, from the step models' JSON schemas.

    The ``tool`` discriminator is the function's name, so it is dropped from the parameters.
    One extra tool, ``ask_user(question)``, lets the model ask back instead of guessing.
    """
    tools: list[dict[str, Any]] = []
    for name, model in STEP_MODELS.items():
        schema = model.model_json_schema()
        schema = _inline_refs(schema, schema.get("$defs", {}))
        schema["properties"].pop("tool", None)
        if "required" in schema:
            schema["required"] = [r for r in schema["required"] if r != "tool"]
        schema.pop("title", None)
        description = " ".join((model.__doc__ or name).split())
        tools.append(
            {
                "type": "function",
                "function": {"name": name, "description": description, "parameters": schema},
            }
        )
    tools.append(
        {
            "type": "function",
            "function": {
                "name": ASK_USER_TOOL,
                "description": "Ask the user a question instead of editing, when a needed part "
                "of the edit (what, where, into what) is missing.",
                "parameters": {
                    "type": "object",
                    "properties": {"question": {"type": "string", "minLength": 1}},
                    "required": ["question"],
                    "additionalProperties": False,
                },
            },
        }
    )
    return tools
