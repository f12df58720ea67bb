"""How the controller's view objects (:class:`HeadView`, :class:`MaskView`, :class:`Loaded`)
become component updates: each ``*_outputs`` list and its ``*`` method agree on the order."""

from __future__ import annotations

from typing import Any

import gradio as gr
from gradio.components import Component

from frontend.handlers import Controller, Entry, HeadView, Loaded, MaskView, UiState
from frontend.layout import Page


def annotated(image: str | None) -> dict[str, Any] | None:
    """An annotator's value: the image without boxes."""
    return {"image": image, "boxes": []} if image else None


def editor_value(image: str | None) -> dict[str, Any] | None:
    """The image editor's value: the image as background, no strokes."""
    return {"background": image, "layers": [], "composite": image} if image else None


class Views:
    """The output lists of the events that show a new head, a mask or a whole page."""

    def __init__(self, page: Page, ctl: Controller) -> None:
        self.page = page
        self.ctl = ctl
        img, edit = page.image, page.edit
        self.head_outputs: list[Component] = [
            page.state,
            img.editor,
            img.summary,
            img.history,
            img.download,
            edit.seg_box,
            edit.seg_click,
            edit.move_box,
            page.inpaint.boxes,
            edit.mask_view,
            edit.mask_info,
            img.undo,
            img.redo,
        ]
        self.mask_outputs: list[Component] = [
            page.state,
            edit.mask_view,
            edit.mask_info,
            edit.move_box,
        ]
        self.load_outputs: list[Component] = [
            *self.head_outputs,
            page.chat.chatbot,
            page.banner,
            page.browser,
            page.generate.boxes,
            page.generate.width,
            page.generate.height,
        ]
        # A page load or sign-in: the session as above, plus which panel shows and who.
        self.entry_outputs: list[Component | gr.Column] = [
            *self.load_outputs,
            page.signin.panel,
            page.app,
            page.user.who,
            page.signin.message,
        ]

    @staticmethod
    def head(st: UiState, view: HeadView) -> tuple[Any, ...]:
        """The new head everywhere it shows; the selected object and prompts are reset."""
        image = view.image
        return (
            st,
            editor_value(image),
            view.summary,
            gr.Gallery(value=view.gallery, selected_index=view.selected),
            gr.DownloadButton(value=view.download, interactive=image is not None),
            annotated(image),
            image,
            annotated(image),
            annotated(image),
            None,
            "",
            gr.Button(interactive=view.can_undo),
            gr.Button(interactive=view.can_redo),
        )

    @staticmethod
    def mask(st: UiState, view: MaskView) -> tuple[Any, ...]:
        # The move box is first emptied: the annotator picks drag mode only when it shows
        # an image that already has a box (then ``Controller.move_box`` sets it).
        return st, (view.image, view.annotations), view.summary, None

    def entry(self, entry: Entry) -> tuple[Any, ...]:
        """``entry_outputs``: the signed-in app, or (nothing loaded) the sign-in panel, with
        this tab's state and the browser's token cleared."""
        if entry.loaded is None:
            skips = [gr.skip()] * len(self.load_outputs)
            skips[self.load_outputs.index(self.page.state)] = UiState()
            skips[self.load_outputs.index(self.page.browser)] = {"session_id": None, "token": None}
            return (
                *skips,
                gr.Column(visible=True),
                gr.Column(visible=False),
                "",
                entry.message,
            )
        return (
            *self.loaded(entry.loaded),
            gr.Column(visible=False),
            gr.Column(visible=True),
            entry.user_line,
            "",
        )

    def loaded(self, loaded: Loaded) -> tuple[Any, ...]:
        banner = gr.Markdown(value=loaded.banner or "", visible=bool(loaded.banner))
        return (
            *self.head(loaded.state, loaded.head),
            loaded.chat,
            banner,
            loaded.stored,
            self.ctl.canvas(loaded.gen_size, loaded.gen_size, None),
            loaded.gen_size,  # width and height default to the model's native size
            loaded.gen_size,
        )
