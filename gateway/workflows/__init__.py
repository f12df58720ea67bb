"""The gateway's workflows, one module per family, each a plain class with its dependencies
injected: ``sessions`` (sessions, image upload and reads, undo/redo/checkout), ``masks``
(segment, painted masks), ``edits`` (remove, move, replace, inpaint), ``generate`` (GLIGEN),
``chat``, ``act`` (chat that edits: the planner's plan run by ``executor``), ``library``
(listing sessions) and ``export``. :class:`Workflows` is the one place they are wired together
(by ``create_app``);
routes get each service through ``gateway.deps``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..clients import WorkerClients
from ..idempotency import Idempotency
from ..metrics import GatewayMetrics
from ..planner import Planner, make_planner
from ..sessions import SessionStore
from ..sessions.index import SessionIndex
from ..settings import GatewaySettings
from .act import ActService
from .base import Editor
from .chat import ChatService
from .edits import EditService
from .executor import PlanExecutor
from .export import SessionExporter
from .generate import GenerateService
from .library import SessionLibrary
from .masks import MaskService
from .sessions import SessionService


@dataclass(frozen=True)
class Workflows:
    """Holds the gateway's services (no logic of its own): built once per app."""

    idempotency: Idempotency
    sessions: SessionService
    masks: MaskService
    edits: EditService
    generate: GenerateService
    chat: ChatService
    planner: Planner
    act: ActService
    library: SessionLibrary
    exporter: SessionExporter

    @classmethod
    def build(
        cls,
        store: SessionStore,
        clients: WorkerClients,
        settings: GatewaySettings,
        metrics: GatewayMetrics,
        planner: Planner | None = None,
    ) -> Workflows:
        """Wire every service; ``planner`` defaults to the one ``GATEWAY_PLANNER_*`` names."""
        idempotency = Idempotency(store, settings, metrics)
        index = SessionIndex(store.redis, settings.session_ttl_s, prefix=store.prefix)
        editor = Editor(store, settings, metrics, index)
        generate = GenerateService(clients, editor)
        sessions = SessionService(store, editor, idempotency, index)
        masks = MaskService(store, clients, editor)
        edits = EditService(clients, editor, generate)
        chat = ChatService(store, clients, editor, settings)
        planner = planner or make_planner()
        executor = PlanExecutor(store, idempotency, sessions, masks, edits, generate)
        return cls(
            idempotency=idempotency,
            sessions=sessions,
            masks=masks,
            edits=edits,
            generate=generate,
            chat=chat,
            planner=planner,
            act=ActService(store, planner, executor, chat),
            library=SessionLibrary(store, index),
            exporter=SessionExporter(store),
        )


__all__ = [
    "ActService",
    "ChatService",
    "EditService",
    "Editor",
    "GenerateService",
    "MaskService",
    "PlanExecutor",
    "SessionExporter",
    "SessionLibrary",
    "SessionService",
    "Workflows",
]
