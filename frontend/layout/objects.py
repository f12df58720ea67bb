"""The Edit tab's object panels: the instance picker (which of the objects a segmentation
found are selected) and the removal preview (the filled image before it is saved)."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr


@dataclass
class InstancePicker:
    """The objects found by the last segmentation, all checked at first; shown only when
    there are several."""

    instances: gr.CheckboxGroup


def build_instance_picker() -> InstancePicker:
    instances = gr.CheckboxGroup(
        choices=[],
        value=[],
        label="Objects found: remove, move and replace act on every checked one at once",
        elem_id="instances",
        visible=False,
    )
    return InstancePicker(instances)


@dataclass
class RemovePreviewPanel:
    """The filled image of a removal not yet saved, with Keep and Discard; hidden until a
    preview is made. ``dilate`` holds the dilation the shown preview was made with, which
    Keep commits."""

    panel: gr.Column
    image: gr.Image
    caption: gr.Markdown
    keep: gr.Button
    discard: gr.Button
    dilate: gr.State


def build_remove_preview() -> RemovePreviewPanel:
    with gr.Column(visible=False, elem_id="remove-preview-panel") as panel:
        image = gr.Image(
            label="Removal preview (not saved)",
            elem_id="remove-preview",
            type="filepath",
            interactive=False,
            height=320,
            buttons=[],
        )
        caption = gr.Markdown(elem_id="remove-preview-info")
        with gr.Row():
            keep = gr.Button("Keep this", variant="primary", elem_id="preview-keep-btn")
            discard = gr.Button("Discard", elem_id="preview-discard-btn")
    dilate = gr.State(None)
    return RemovePreviewPanel(panel, image, caption, keep, discard, dilate)
