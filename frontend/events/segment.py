"""Segmentation events: the Segment button and Enter in the text box, clicks on the image,
and clearing the prompts."""

from __future__ import annotations

from typing import Any

import gradio as gr

from frontend.events.views import Views, annotated, editor_value
from frontend.handlers import Controller, UiState


def wire_segment(ctl: Controller, views: Views) -> list[Any]:
    """Wire the segment events; answers the three that select an object (to chain on)."""
    page, edit = views.page, views.page.edit

    async def on_segment(
        st: UiState,
        box_v: dict[str, Any] | None,
        editor_v: dict[str, Any] | None,
        text: str | None,
    ) -> tuple[Any, ...]:
        st, view = await ctl.segment(st, box_value=box_v, editor_value=editor_v, text=text)
        return views.mask(st, view)

    async def on_click(st: UiState, mode: str, evt: gr.SelectData) -> tuple[Any, ...]:
        # Clicks are a prompt kind of their own: a box, strokes or text given before are
        # cleared (frontend.events.prompts), never merged in.
        st, _ = ctl.start_prompt(st, "click")
        st, view = await ctl.click(st, evt.index, mode != "exclude")
        return views.mask(st, view)

    def show_move_box(st: UiState) -> Any:
        return ctl.move_box(st)

    def on_clear_prompts(st: UiState) -> tuple[Any, ...]:
        st = ctl.clear_prompts(st)
        image = annotated(st.head_path)
        return st, image, editor_value(st.head_path), "", None, "", image

    seg_inputs = [page.state, edit.seg_box, page.image.editor, edit.seg_text]
    then: dict[str, Any] = {"fn": show_move_box, "inputs": [page.state], "outputs": [edit.move_box]}
    by_button = edit.segment_btn.click(
        on_segment, seg_inputs, views.mask_outputs, api_name="segment"
    ).then(**then, api_visibility="private")
    by_text = edit.seg_text.submit(
        on_segment, seg_inputs, views.mask_outputs, api_visibility="private"
    ).then(**then, api_visibility="private")
    by_click = edit.seg_click.select(
        on_click,
        [page.state, edit.click_mode],
        views.mask_outputs,
        api_visibility="private",
    ).then(**then, api_visibility="private")
    edit.clear_prompts.click(
        on_clear_prompts,
        [page.state],
        [
            page.state,
            edit.seg_box,
            page.image.editor,
            edit.seg_text,
            edit.mask_view,
            edit.mask_info,
            edit.move_box,
        ],
        api_visibility="private",
    )
    return [by_button, by_text, by_click]
