"""The gateway's workflows, one module per family, each a plain class with its dependencies
injected: ``sessions`` (sessions, image upload and reads, undo/redo/checkout), ``masks``
(segment, painted masks), ``edits`` (remove, move, replace, inpaint), ``generate`` (GLIGEN),
``chat``. :class:`Workflows` is the one place they are wired together (by ``create_app``);
routes get each service through ``gateway.deps``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..clients import WorkerClients
from ..idempotency import Idempotency
from ..metrics import GatewayMetrics
from ..sessions import SessionStore
from ..settings import GatewaySettings
from .base import Editor
from .chat import ChatService
from .edits import EditService
from .generate import GenerateService
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

    @classmethod
    def build(
        cls,
        store: SessionStore,
        clients: WorkerClients,
        settings: GatewaySettings,
        metrics: GatewayMetrics,
    ) -> Workflows:
        idempotency = Idempotency(store, settings, metrics)
        editor = Editor(store, settings, metrics)
        generate = GenerateService(clients, editor)
        return cls(
            idempotency=idempotency,
            sessions=SessionService(store, editor, idempotency),
            masks=MaskService(store, clients, editor),
            edits=EditService(clients, editor, generate),
            generate=generate,
            chat=ChatService(store, clients, editor, settings),
        )


__all__ = [
    "ChatService",
    "EditService",
    "Editor",
    "GenerateService",
    "MaskService",
    "SessionService",
    "Workflows",
]
