"""The gateway's public contract (``/v1``), shared by the gateway (``lvi.contracts.gateway``
re-exports it) and the client SDK.

Coordinates are pixels of the image as stored (after EXIF orientation); the gateway turns
them into what each worker expects (GLIGEN wants boxes normalised to 0..1). Images travel
as raw bytes (upload bodies, ``GET .../images/{version}``), never base64 in this API, except
the optional ``stroke`` scribble of a segment request, which is a base64 single-channel PNG.

Long operations stream with ``Accept: text/event-stream``: ``event: progress``
(:class:`ProgressEvent`) ... then ``event: result`` (:class:`Version`) or ``event: error``
(the error envelope). Chat streams ``event: delta`` (:class:`ChatDelta`) ... then
``event: done`` (:class:`ChatReply`) or ``event: error``; a chat with ``act`` first sends
``event: plan`` (:class:`PlanReply`), then per step ``event: progress`` (with ``action``, its
index) and ``event: action`` (:class:`Action`), then the deltas and ``done``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .errors import ErrorEnvelope

# The GLIGEN worker's contract (lvi.contracts.gligen) takes these three from here: the SDK
# must not import the server's kernel, and the public limits are the gateway's to state.
MAX_BOXES = 30  # the diffusers GLIGEN pipeline's limit (it silently drops the rest)
MAX_PROMPT = 2000
MAX_PHRASE = 200
MAX_CHAT_CHARS = 8000
MAX_POINTS = 64
MAX_SEED = 2**32 - 1
MAX_INSTANCES = 16  # masks one segment call may store (merge=false)
MAX_EDIT_MASKS = 16  # masks one edit may combine (mask_ids)

Coord = Annotated[float, Field(ge=-1e6, le=1e6)]
PointXY = Annotated[list[Coord], Field(min_length=2, max_length=2)]
BoxXYXY = Annotated[list[Coord], Field(min_length=4, max_length=4)]
Phrase = Annotated[str, Field(min_length=1, max_length=MAX_PHRASE)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]

EVENT_STREAM = "text/event-stream"
IDEMPOTENCY_HEADER = "Idempotency-Key"
IF_MATCH_HEADER = "If-Match"


# -- sessions and versions ------------------------------------------------------------------
class SessionCreate(BaseModel):
    """Body of ``POST /v1/sessions`` (optional)."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, max_length=200)


class Version(BaseModel):
    """One image version of a session. Versions are never deleted; the head points at one."""

    id: int = Field(description="Version number within the session (1, 2, ...).")
    parent: int | None = Field(description="The version this one was made from.")
    operation: str = Field(description="upload, generate, remove, move, replace or inpaint.")
    params: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = None
    image_hash: str = Field(description="sha256 of the stored image bytes.")
    content_type: str
    bytes: int
    width: int
    height: int
    created_at: float = Field(description="Unix time.")
    image_url: str = Field(description="Path of the image bytes on the gateway.")
    mask_id: str | None = Field(
        None, description="A mask of the edited object on this version (move), if any."
    )


class MaskInfo(BaseModel):
    """A mask of one session: from segmentation, a user upload, or a move."""

    mask_id: str
    version: int | None = Field(description="The image version the mask was made on.")
    source: Literal["segment", "upload", "move"]
    width: int
    height: int
    bbox: list[int] | None = Field(None, description="[x0, y0, x1, y1], x1/y1 exclusive.")
    area: int | None = None
    score: float | None = Field(
        None, description="The model's confidence; null for GrabCut or a painted mask."
    )
    label: str | None = None
    created_at: float
    url: str


class SegmentResult(MaskInfo):
    """Answer of ``POST .../segment``: the best mask's fields at the top level (as before), and
    every mask stored by this call in ``instances``, best first (one when ``merge``)."""

    instances: list[MaskInfo] = Field(
        default_factory=list, description="Every mask stored by this call, best first."
    )


class Message(BaseModel):
    """A chat turn, tied to the image version it was about."""

    role: Literal["user", "assistant"]
    content: str
    version: int | None = Field(description="Head image version when the turn was made.")
    note: str | None = Field(
        None, description="What the model was told besides the text (e.g. the image changed)."
    )
    created_at: float


class Session(BaseModel):
    """A session: its versions, head, masks and messages."""

    id: str
    title: str | None = None
    created_at: float
    updated_at: float
    expires_in: int | None = Field(None, description="Seconds until the session expires.")
    head: int | None
    can_undo: bool
    can_redo: bool
    bytes: int = Field(description="Bytes of images and masks stored for this session.")
    versions: list[Version]
    masks: list[MaskInfo]
    messages: list[Message]


class SessionUpdate(BaseModel):
    """Body of ``PATCH /v1/sessions/{id}``."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(max_length=200, description="The new title (null clears it).")


class SessionSummary(BaseModel):
    """One row of ``GET /v1/sessions``."""

    id: str
    title: str | None = None
    created_at: float
    updated_at: float
    head: int | None
    versions: int = Field(description="How many versions the session holds.")
    thumbnail_url: str | None = Field(
        None, description="The head image's URL (null before the first image)."
    )


class SessionPage(BaseModel):
    """A page of the caller's sessions, most recently updated first."""

    sessions: list[SessionSummary]
    next_cursor: str | None = Field(
        None, description="Pass as ?cursor= for the next page; null on the last page."
    )


class Checkout(BaseModel):
    """Body of ``POST /v1/sessions/{id}/checkout``."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)


# -- chat -----------------------------------------------------------------------------------
class _VisualPrompts(BaseModel):
    """What the user pointed at with the message (pixels of the head image): clicks, boxes, a
    stroke. ``act`` and ``plan`` give them to the planner: "remove this" + a click."""

    model_config = ConfigDict(extra="forbid")

    points: list[PointXY] = Field(default_factory=list, max_length=MAX_POINTS)
    labels: list[Literal[0, 1]] | None = Field(None, description="1 include, 0 exclude.")
    boxes: list[BoxXYXY] = Field(default_factory=list, max_length=16)
    stroke: str | None = Field(
        None, description="Base64 single-channel PNG scribble, the size of the image."
    )
    mask_id: str | None = Field(
        None,
        max_length=64,
        description="The mask 'it/this/that' means (default: the session's latest mask made "
        "on an image of the head's size).",
    )

    def has_visual_prompt(self) -> bool:
        return bool(self.points or self.boxes or self.stroke or self.mask_id)

    @model_validator(mode="after")
    def _labels(self) -> _VisualPrompts:
        if self.labels is not None and len(self.labels) != len(self.points):
            raise ValueError("labels must have one entry per point")
        return self


class ChatRequest(_VisualPrompts):
    """Body of ``POST /v1/sessions/{id}/chat``: one user turn about the head image.

    With ``act`` the message may also edit the image: the gateway plans (see
    :class:`PlanReply`), runs each step as the ordinary workflow (one version per edit), then
    the model answers about the final image; the visual prompts go with the message.
    """

    message: str = Field(min_length=1, max_length=MAX_CHAT_CHARS)
    stream: bool = False
    act: bool = Field(False, description="Plan and run the edits the message asks for.")
    temperature: float = Field(0.2, ge=0.0, le=2.0)
    top_p: float = Field(0.7, gt=0.0, le=1.0)
    max_tokens: int = Field(512, ge=1, le=4096)
    seed: int | None = Field(None, ge=0, le=2**63 - 1)

    @model_validator(mode="after")
    def _prompts_need_act(self) -> ChatRequest:
        if not self.act and self.has_visual_prompt():
            raise ValueError("points, boxes, stroke and mask_id go with act=true")
        return self


class PlanRequest(_VisualPrompts):
    """Body of ``POST /v1/sessions/{id}/plan``: what ``act`` would do, without doing it."""

    message: str = Field(min_length=1, max_length=MAX_CHAT_CHARS)


class PlannedAction(BaseModel):
    """One step of a plan: a workflow (``tool``) and its arguments."""

    tool: str = Field(
        description="segment, remove, replace, move, inpaint, generate, undo or redo."
    )
    args: dict[str, Any] = Field(default_factory=dict)


class PlanReply(BaseModel):
    """A plan: the steps to run in order, or a question to ask back, or neither (just chat).
    The answer of ``POST .../plan`` and the first event (``plan``) of a streamed act turn."""

    actions: list[PlannedAction] = Field(default_factory=list)
    clarification: str | None = Field(None, description="The question asked back, if any.")
    planner: str = Field(description="Who planned: 'rules' or 'llm'.")
    fallback_reason: str | None = Field(
        None, description="Why the llm planner was not used when it is configured."
    )


class Action(BaseModel):
    """One step of an act turn as it ran (``event: action`` when streamed)."""

    index: int = Field(description="Position in the plan, from 0.")
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    status: Literal["done", "failed", "skipped"]
    version: int | None = Field(
        None, description="The version the step made (an edit) or moved the head to (undo/redo)."
    )
    mask_id: str | None = Field(None, description="The mask the step made (segment) or used.")
    summary: str = Field("", description='One line for people: "Removed it (version 5)".')
    error: ErrorEnvelope | None = Field(None, description="Why the step failed.")


class ChatUsage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatReply(BaseModel):
    """The turn as stored: the user's message and the assistant's reply."""

    reply: Message
    user: Message
    usage: ChatUsage | None = None
    finish_reason: str | None = None
    actions: list[Action] = Field(
        default_factory=list, description="act: every step of the plan, as it ran."
    )
    clarification: str | None = Field(
        None, description="act: the question asked back instead of editing (also the reply)."
    )
    planner: str | None = Field(None, description="act: who planned ('rules' or 'llm').")
    fallback_reason: str | None = None


class ChatDelta(BaseModel):
    """One streamed piece of the assistant's reply."""

    content: str


# -- segmentation and masks -----------------------------------------------------------------
class SegmentRequest(BaseModel):
    """Body of ``POST /v1/sessions/{id}/segment``: at least one of points, boxes, stroke, text."""

    model_config = ConfigDict(extra="forbid")

    points: list[PointXY] = Field(default_factory=list, max_length=MAX_POINTS)
    labels: list[Literal[0, 1]] | None = Field(None, description="1 include, 0 exclude.")
    boxes: list[BoxXYXY] = Field(default_factory=list, max_length=16)
    stroke: str | None = Field(
        None, description="Base64 single-channel PNG scribble, the size of the image."
    )
    text: str | None = Field(
        None, min_length=1, max_length=256, description="Referring text ('cat. dog' for two)."
    )
    dilate: int = Field(0, ge=0, le=256)
    merge: bool = Field(
        True,
        description="Several objects found (boxes, text): one mask of them all. False: one "
        "mask per object (per box, per text instance), each stored with its own mask_id.",
    )
    max_instances: int = Field(
        MAX_INSTANCES, ge=1, le=MAX_INSTANCES, description="Cap on masks kept when not merged."
    )

    @model_validator(mode="after")
    def _has_prompt(self) -> SegmentRequest:
        if not (self.points or self.boxes or self.stroke or self.text):
            raise ValueError("give at least one of points, boxes, stroke or text")
        if self.labels is not None and len(self.labels) != len(self.points):
            raise ValueError("labels must have one entry per point")
        return self


def _one_phrase_per_box(boxes: list[Any], phrases: list[str]) -> None:
    if len(boxes) != len(phrases):
        raise ValueError(f"give one phrase per box ({len(boxes)} boxes, {len(phrases)} phrases)")


# -- edits ----------------------------------------------------------------------------------
class _Edit(BaseModel):
    model_config = ConfigDict(extra="forbid")


MaskId = Annotated[str, Field(min_length=1, max_length=64)]


class _MaskEdit(_Edit):
    """An edit of one or several stored masks (several are combined into one region)."""

    mask_id: MaskId | None = Field(None, description="One mask (or give mask_ids).")
    mask_ids: list[MaskId] | None = Field(
        None,
        min_length=1,
        max_length=MAX_EDIT_MASKS,
        description="Several masks, edited together as their union.",
    )
    allow_stale_mask: bool = Field(
        False,
        description="Apply masks made on another version than the head (else 409 "
        "mask_version_mismatch).",
    )

    @model_validator(mode="after")
    def _one_way(self) -> _MaskEdit:
        if (self.mask_id is None) == (self.mask_ids is None):
            raise ValueError("give exactly one of mask_id or mask_ids")
        return self

    @property
    def masks(self) -> list[str]:
        """The mask ids, in order, without repeats."""
        ids = [self.mask_id] if self.mask_id is not None else list(self.mask_ids or [])
        return list(dict.fromkeys(ids))


class _Diffusion(_Edit):
    steps: int | None = Field(None, ge=1, le=150, description="Unset: the worker's default.")
    guidance_scale: float = Field(7.5, ge=0.0, le=50.0)
    seed: Seed | None = None
    negative_prompt: str | None = Field(None, max_length=MAX_PROMPT)


class RemoveRequest(_MaskEdit):
    """Fill the masked region (the inpaint worker) -> a new version, or with ``preview`` the
    filled image only (PNG bytes, nothing committed)."""

    dilate: int = Field(10, ge=0, le=256, description="Grow the mask by this many pixels.")
    preview: bool = Field(
        False,
        description="Answer the filled image (image/png bytes, 200) without committing a version.",
    )


class MoveRequest(_Diffusion, _MaskEdit):
    """Fill the old place, then paste the object's own pixels at (dx, dy); or, with a
    ``phrase``, regenerate it there with GLIGEN grounded inpainting."""

    dx: int = Field(ge=-16384, le=16384)
    dy: int = Field(ge=-16384, le=16384)
    dilate: int = Field(10, ge=0, le=256)
    phrase: Phrase | None = None
    prompt: str | None = Field(None, max_length=MAX_PROMPT)
    feather: int = Field(2, ge=0, le=64)


class ReplaceRequest(_Diffusion, _MaskEdit):
    """GLIGEN grounded inpainting inside the object's box with a new phrase."""

    phrase: Phrase
    prompt: str | None = Field(None, max_length=MAX_PROMPT)
    use_mask: bool = Field(
        False, description="Restrict the change to the object's mask instead of its box."
    )


class InpaintRequest(_Diffusion):
    """Add new objects: one phrase per box (pixels of the head image)."""

    boxes: list[BoxXYXY] = Field(min_length=1, max_length=MAX_BOXES)
    phrases: list[Phrase] = Field(min_length=1, max_length=MAX_BOXES)
    prompt: str | None = Field(None, max_length=MAX_PROMPT)

    @model_validator(mode="after")
    def _pairs(self) -> InpaintRequest:
        _one_phrase_per_box(self.boxes, self.phrases)
        return self


class GenerateRequest(_Diffusion):
    """A new image from a caption, optionally grounded: boxes are pixels of the output."""

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT)
    boxes: list[BoxXYXY] = Field(default_factory=list, max_length=MAX_BOXES)
    phrases: list[Phrase] = Field(default_factory=list, max_length=MAX_BOXES)
    width: int = Field(512, ge=64, le=2048, multiple_of=8)
    height: int = Field(512, ge=64, le=2048, multiple_of=8)
    scheduled_sampling_beta: float = Field(0.3, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _pairs(self) -> GenerateRequest:
        _one_phrase_per_box(self.boxes, self.phrases)
        return self


class ProgressEvent(BaseModel):
    """A streamed progress event of a long operation."""

    stage: str = Field(description="e.g. 'inpaint', 'composite', 'generate'.")
    step: int | None = None
    total: int | None = None
    action: int | None = Field(None, description="act: the index of the step it belongs to.")


# -- service --------------------------------------------------------------------------------
class WorkerStatus(BaseModel):
    """One worker as the gateway sees it."""

    name: str
    skill: str
    url: str
    state: str = Field(description="ready, not_ready, unreachable or circuit_open.")
    info: dict[str, Any] | None = None
    error: str | None = None


class ServiceInfo(BaseModel):
    """``GET /v1/info``: the gateway's limits and every worker's ``/v1/info``."""

    version: str
    random_weights: bool = Field(
        description="True when any skill runs random (tiny) weights: its outputs are meaningless."
    )
    random_skills: list[str] = Field(
        default_factory=list,
        description="The skills with random weights (tiny or local profile, not a classical "
        "backend such as GrabCut or OpenCV): what the UI's banner names.",
    )
    profiles: dict[str, str]
    limits: dict[str, int]
    workers: list[WorkerStatus]


class QuotaUsage(BaseModel):
    """One quota: what is used, and the limit (``None``: no limit)."""

    used: int
    limit: int | None = None


class Usage(BaseModel):
    """``GET /v1/usage``: where the calling principal stands against its quotas."""

    principal: str
    bytes: QuotaUsage = Field(description="Image and mask bytes stored in live sessions.")
    sessions: QuotaUsage = Field(description="Live sessions.")
    jobs: QuotaUsage = Field(
        description="Long jobs running now (generate, inpaint, remove, replace, move)."
    )
    max_versions_per_session: int
    max_session_bytes: int
    rate_limit_per_minute: int | None = None


class LoginRequest(BaseModel):
    """``POST /v1/auth/login``: a username and password (checked against the gateway's
    hashed user table) exchanged for a short-lived bearer token."""

    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)
    ttl_s: int | None = Field(
        default=None, ge=60, description="Token lifetime (capped by the gateway's maximum)."
    )


class TokenRequest(BaseModel):
    """``POST /v1/auth/token``: exchange the API key of this request for a sign-in token (what
    the web UI keeps in a browser instead of the key itself)."""

    model_config = ConfigDict(extra="forbid")
    ttl_s: int | None = Field(default=None, ge=60)
    principal: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9._@+-]+$",
        description="Delegates only (GATEWAY_DELEGATES): the principal to sign in as, e.g. a "
        "user your own application or SSO proxy has authenticated. 403 not_a_delegate for "
        "any other caller.",
    )


class AuthToken(BaseModel):
    """A sign-in token: send it as ``Authorization: Bearer <token>``, like an API key; it
    expires after ``expires_in`` seconds and ``POST /v1/auth/logout`` revokes it."""

    token: str
    principal: str
    expires_in: int
    method: Literal["password", "api_key", "delegated"] = Field(
        description="How the holder signed in (delegated: a delegate signed them in)."
    )


class WhoAmI(BaseModel):
    """``GET /v1/auth/whoami``: who the presented credentials are."""

    principal: str
    method: Literal["api_key", "token", "anonymous"]


class Readiness(BaseModel):
    """``GET /readyz``."""

    status: Literal["ready", "degraded", "not_ready"] = Field(
        description="degraded: Redis refuses writes (full); reads still work."
    )
    redis: str = Field(description="ok, full (refuses writes) or unreachable.")
    workers: list[WorkerStatus]


__all__ = [
    "EVENT_STREAM",
    "IDEMPOTENCY_HEADER",
    "IF_MATCH_HEADER",
    "MAX_BOXES",
    "MAX_CHAT_CHARS",
    "MAX_EDIT_MASKS",
    "MAX_INSTANCES",
    "MAX_PHRASE",
    "MAX_POINTS",
    "MAX_PROMPT",
    "MAX_SEED",
    "Action",
    "AuthToken",
    "BoxXYXY",
    "ChatDelta",
    "ChatReply",
    "ChatRequest",
    "ChatUsage",
    "Checkout",
    "Coord",
    "GenerateRequest",
    "InpaintRequest",
    "LoginRequest",
    "MaskInfo",
    "Message",
    "MoveRequest",
    "Phrase",
    "PlanReply",
    "PlanRequest",
    "PlannedAction",
    "PointXY",
    "ProgressEvent",
    "QuotaUsage",
    "Readiness",
    "RemoveRequest",
    "ReplaceRequest",
    "Seed",
    "SegmentRequest",
    "SegmentResult",
    "ServiceInfo",
    "Session",
    "SessionCreate",
    "SessionPage",
    "SessionSummary",
    "SessionUpdate",
    "TokenRequest",
    "Usage",
    "Version",
    "WhoAmI",
    "WorkerStatus",
]
