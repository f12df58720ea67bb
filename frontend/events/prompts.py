"""Segmentation prompts one kind at a time, and the click view with its markers.

Starting a box, brush strokes or a referring text clears the prompts of the other kinds
(clicks are handled in ``frontend.events.segment``, which asks the same
:meth:`~frontend.handlers.PromptHandlers.start_prompt`); whenever the selected object
changes, the click image shows a marker on every click.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from frontend.events.views import Views, annotated, editor_value
from frontend.handlers import Controller, UiState, annotator_boxes
from frontend.handlers.prompts import PromptKind

# Runs once per page: a pointer pressed on the head editor's canvas starts a stroke (the
# editor's own "input" event also fires when the app sets its image, so it cannot tell).
STROKE_JS = """() => {
  document.addEventListener('pointerdown', (event) => {
    if (event.target.closest && event.target.closest('#head-editor canvas')) {
      document.querySelector('#head-editor-stroke')?.click();
    }
  }, true);
}"""


def wire_prompts(demo: gr.Blocks, ctl: Controller, views: Views) -> None:
    page, edit = views.page, views.page.edit
    editor = page.image.editor
    # Whether the head editor's strokes were just cleared: it is emptied (None), then given
    # the head back, since setting the same image again would keep the strokes on it.
    refill = gr.State(False)

    def clear_inputs(st: UiState, cleared: frozenset[str], *kinds: str) -> list[Any]:
        """For each kind named, its input emptied when it was cleared, else left alone;
        then whether the editor needs its image back."""
        empty = {
            "box": annotated(st.head_path),
            "stroke": None,
            "text": "",
            "click": st.head_path,  # the click image without markers
        }
        out = [empty[k] if k in cleared else gr.skip() for k in kinds]
        return [*out, "stroke" in cleared and "stroke" in kinds]

    def start(st: UiState, kind: PromptKind, *kinds: str) -> tuple[Any, ...]:
        new, cleared = ctl.start_prompt(st, kind)
        state_out = new if new is not st else gr.skip()
        return (state_out, *clear_inputs(new, cleared, *kinds))

    def on_box(st: UiState, box_v: dict[str, Any] | None) -> tuple[Any, ...]:
        if not annotator_boxes(box_v):  # the app reset the annotator: nothing drawn
            return (*(gr.skip() for _ in range(4)), False)
        return start(st, "box", "stroke", "text", "click")

    def on_stroke(st: UiState) -> tuple[Any, ...]:
        return start(st, "stroke", "box", "text", "click")

    def on_text(st: UiState) -> tuple[Any, ...]:
        return start(st, "text", "box", "stroke", "click")

    def on_click(st: UiState) -> tuple[Any, ...]:
        # The state is the click handler's (events.segment); this one only empties inputs.
        _, cleared = ctl.start_prompt(st, "click")
        return tuple(clear_inputs(st, cleared, "box", "stroke", "text"))

    def on_refill(st: UiState, needed: bool) -> Any:
        return editor_value(st.head_path) if needed else gr.skip()

    private: dict[str, Any] = {"api_visibility": "private", "show_progress": "hidden"}
    then: dict[str, Any] = {"fn": on_refill, "inputs": [page.state, refill], "outputs": [editor]}
    edit.seg_box.change(
        on_box,
        [page.state, edit.seg_box],
        [page.state, editor, edit.seg_text, edit.seg_click, refill],
        **private,
    ).then(**then, **private)
    stroke = gr.Button(visible="hidden", elem_id="head-editor-stroke")
    stroke.click(
        on_stroke,
        [page.state],
        [page.state, edit.seg_box, edit.seg_text, edit.seg_click, refill],
        **private,
    )
    edit.seg_text.input(
        on_text,
        [page.state],
        [page.state, edit.seg_box, editor, edit.seg_click, refill],
        **private,
    ).then(**then, **private)
    edit.seg_click.select(
        on_click, [page.state], [edit.seg_box, editor, edit.seg_text, refill], **private
    ).then(**then, **private)
    demo.load(None, js=STROKE_JS)
