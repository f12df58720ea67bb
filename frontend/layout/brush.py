"""The mask brush panel (in the Edit tab, under the selected object): a canvas showing the
head with the selected mask tinted on it, add/erase, and the button that applies the
strokes to the mask."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

BRUSH_MODES = [("Add to the mask", "add"), ("Erase from the mask", "erase")]


@dataclass
class MaskBrush:
    """Paint to add to or erase from the selected object's mask."""

    editor: gr.ImageEditor
    mode: gr.Radio
    apply: gr.Button


def build_mask_brush() -> MaskBrush:
    """Inside the current Blocks context (the Edit tab)."""
    with gr.Accordion("Refine the mask with a brush", open=True, elem_id="mask-brush-panel"):
        editor = gr.ImageEditor(
            label="Paint over the image: the selected object is tinted blue",
            elem_id="mask-brush",
            type="numpy",
            sources=[],
            transforms=[],
            layers=False,
            format="png",
            brush=gr.Brush(default_size=24, colors=["#f59e0b"], color_mode="fixed"),
            height=360,
            buttons=["fullscreen"],
            interactive=True,
        )
        with gr.Row(equal_height=True):
            mode = gr.Radio(
                BRUSH_MODES,
                value="add",
                label="The brush strokes",
                elem_id="mask-brush-mode",
                scale=2,
            )
            apply = gr.Button("Apply brush to mask", elem_id="mask-brush-apply", scale=1)
    return MaskBrush(editor, mode, apply)
