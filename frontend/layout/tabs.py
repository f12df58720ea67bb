"""The editing tabs under the image (remove/move/replace, inpaint, generate) and the shared
generation options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gradio as gr
from gradio_image_annotation import image_annotator

from frontend.examples import GENERATE_EXAMPLES
from frontend.layout import objects
from frontend.layout.brush import MaskBrush, build_mask_brush

MASK_COLORS = {"include": "#16a34a", "exclude": "#dc2626"}


def _annotator(label: str, elem_id: str, height: int, **kw: Any) -> image_annotator:
    """A box-drawing canvas over an image the app sets (never an upload of its own)."""
    return image_annotator(
        label=label,
        elem_id=elem_id,
        sources=None,
        image_type="filepath",
        show_clear_button=False,
        show_download_button=False,
        height=height,
        **kw,
    )


@dataclass
class EditTab:
    """Select an object (box, clicks, strokes, text), then remove, move or replace it."""

    seg_box: image_annotator
    seg_click: gr.Image
    click_mode: gr.Radio
    seg_text: gr.Textbox
    segment_btn: gr.Button
    clear_prompts: gr.Button
    mask_view: gr.AnnotatedImage
    mask_info: gr.Markdown
    move_box: image_annotator
    dilate: gr.Slider
    remove_btn: gr.Button
    move_phrase: gr.Textbox
    move_btn: gr.Button
    replace_phrase: gr.Textbox
    replace_use_mask: gr.Checkbox
    replace_btn: gr.Button
    # Keyword-only: the fields above are filled from the builders' tuples.
    picker: objects.InstancePicker = field(kw_only=True)
    preview: objects.RemovePreviewPanel = field(kw_only=True)
    brush: MaskBrush = field(kw_only=True)


def _prompt_inputs() -> tuple[image_annotator, gr.Image]:
    with gr.Row():
        with gr.Column(min_width=240):
            # Not single_box: that switches the annotator to drag mode after one box, for
            # good; several boxes are valid prompts.
            seg_box = _annotator(
                "Draw a box around the object",
                "seg-box",
                280,
                show_remove_button=True,
                disable_edit_boxes=True,
            )
        with gr.Column(min_width=240):
            seg_click = gr.Image(
                label="Click the object",
                elem_id="seg-click",
                type="filepath",
                interactive=False,
                height=280,
                buttons=[],
            )
    return seg_box, seg_click


def _prompt_controls() -> tuple[gr.Radio, gr.Textbox, gr.Button, gr.Button]:
    with gr.Row(equal_height=True):
        click_mode = gr.Radio(
            ["include", "exclude"],
            value="include",
            label="A click marks a point to",
            elem_id="click-mode",
            min_width=160,
        )
        seg_text = gr.Textbox(
            label="Referring text",
            placeholder="e.g. the red ball",
            elem_id="seg-text",
            min_width=160,
        )
        with gr.Column(min_width=160):
            segment_btn = gr.Button("Segment", variant="primary", elem_id="segment-btn")
            clear_prompts = gr.Button("Clear prompts", elem_id="clear-prompts-btn", size="sm")
    return click_mode, seg_text, segment_btn, clear_prompts


def _selection() -> tuple[gr.AnnotatedImage, gr.Markdown, image_annotator]:
    with gr.Row():
        with gr.Column(min_width=240):
            mask_view = gr.AnnotatedImage(
                label="Selected object", elem_id="mask-view", height=280, color_map=MASK_COLORS
            )
            mask_info = gr.Markdown(elem_id="mask-info")
        with gr.Column(min_width=240):
            # Moving: drag the object's box to its new place.
            move_box = _annotator(
                "Move: drag the object's box to its new place",
                "move-box",
                280,
                single_box=True,
                disable_edit_boxes=True,
            )
    return mask_view, mask_info, move_box


def _object_actions() -> tuple[Any, ...]:
    with gr.Row(equal_height=True):
        dilate = gr.Slider(
            0,
            128,
            value=10,
            step=2,
            label="Mask dilation (px): grow the mask before filling",
            elem_id="dilate",
            scale=3,
        )
        remove_btn = gr.Button("Remove object", variant="stop", elem_id="remove-btn", scale=1)
    with gr.Row(equal_height=True):
        move_phrase = gr.Textbox(
            label="Move: regenerate the object as (optional; without a phrase its own pixels move)",
            placeholder="e.g. a blue ball",
            elem_id="move-phrase",
            scale=3,
        )
        move_btn = gr.Button("Move object", elem_id="move-btn", scale=1)
    with gr.Row(equal_height=True):
        replace_phrase = gr.Textbox(
            label="Replace the object with",
            placeholder="e.g. a green apple",
            elem_id="replace-phrase",
            scale=2,
        )
        replace_use_mask = gr.Checkbox(
            label="Only inside its mask (not its whole box)", elem_id="replace-use-mask", scale=1
        )
        replace_btn = gr.Button("Replace object", elem_id="replace-btn", scale=1)
    return (
        dilate,
        remove_btn,
        move_phrase,
        move_btn,
        replace_phrase,
        replace_use_mask,
        replace_btn,
    )


def build_edit_tab() -> EditTab:
    with gr.Tab("Remove or change objects", id="edit", elem_id="tab-edit"):
        gr.Markdown(
            "Select an object with one kind of prompt: a box, clicks (include/exclude), "
            "brush strokes on the image above, or a referring phrase (starting another kind "
            "clears the last). Refine its mask with the brush, then remove, move or replace it."
        )
        seg_box, seg_click = _prompt_inputs()
        controls = _prompt_controls()
        picker = objects.build_instance_picker()
        selection = _selection()
        brush = build_mask_brush()
        preview = objects.build_remove_preview()
        actions = _object_actions()
    return EditTab(
        seg_box,
        seg_click,
        *controls,
        *selection,
        *actions,
        picker=picker,
        preview=preview,
        brush=brush,
    )


@dataclass
class InpaintTab:
    """New objects in boxes, each with its phrase."""

    boxes: image_annotator
    phrases: gr.Textbox
    prompt: gr.Textbox
    button: gr.Button


def build_inpaint_tab() -> InpaintTab:
    with gr.Tab("Inpaint new objects", id="inpaint", elem_id="tab-inpaint"):
        gr.Markdown(
            "Draw a box for each new object, then give each its phrase: click a box to label "
            "it, or list the phrases below in drawing order."
        )
        boxes = _annotator("Boxes for new objects", "inpaint-boxes", 380, show_remove_button=True)
        phrases = gr.Textbox(
            label="Phrases for unlabelled boxes (drawing order, ';' between)",
            placeholder="a cat; a hat",
            elem_id="inpaint-phrases",
        )
        prompt = gr.Textbox(label="Caption (optional)", elem_id="inpaint-prompt")
        button = gr.Button("Generate", variant="primary", elem_id="inpaint-btn")
    return InpaintTab(boxes, phrases, prompt, button)


@dataclass
class GenerateTab:
    """A new image from a caption, optionally laid out with labelled boxes."""

    prompt: gr.Textbox
    boxes: image_annotator
    phrases: gr.Textbox
    width: gr.Slider
    height: gr.Slider
    button: gr.Button


def build_generate_tab() -> GenerateTab:
    with gr.Tab("Generate new image", id="generate", elem_id="tab-generate"):
        prompt = gr.Textbox(
            label="Caption",
            placeholder="a cat sitting on a sofa in a living room",
            elem_id="gen-prompt",
        )
        boxes = _annotator(
            "Optional layout: draw boxes on the canvas and label them",
            "gen-boxes",
            320,
            show_remove_button=True,
        )
        phrases = gr.Textbox(
            label="Phrases for unlabelled boxes (drawing order, ';' between)",
            elem_id="gen-phrases",
        )
        with gr.Row():
            width = gr.Slider(256, 1024, value=512, step=64, label="Width", elem_id="gen-width")
            height = gr.Slider(256, 1024, value=512, step=64, label="Height", elem_id="gen-height")
        button = gr.Button("Generate", variant="primary", elem_id="gen-btn")
        gr.Examples(
            [list(e) for e in GENERATE_EXAMPLES], [prompt, phrases], label="Example captions"
        )
    return GenerateTab(prompt, boxes, phrases, width, height, button)


@dataclass
class AdvancedOptions:
    """What every generation shares: steps, guidance, scheduled sampling, seed."""

    steps: gr.Slider
    guidance: gr.Slider
    beta: gr.Slider
    seed: gr.Number


def build_advanced_options() -> AdvancedOptions:
    with gr.Accordion("Advanced options (generation)", open=True, elem_id="advanced"):
        with gr.Row():
            steps = gr.Slider(1, 100, value=25, step=1, label="Steps", elem_id="steps")
            guidance = gr.Slider(
                0, 50, value=7.5, step=0.5, label="Guidance scale", elem_id="guidance"
            )
        with gr.Row():
            beta = gr.Slider(
                0,
                1,
                value=0.3,
                step=0.05,
                label="Scheduled sampling τ (Generate tab: grounding for this fraction of "
                "the steps)",
                elem_id="beta",
            )
            seed = gr.Number(
                value=-1,
                precision=0,
                minimum=-1,
                label="Seed (-1: random; the seed used is shown with the version)",
                elem_id="seed",
            )
    return AdvancedOptions(steps, guidance, beta, seed)


@dataclass
class JobBar:
    """Under the tabs, next to their buttons: the running edit's progress and its Cancel."""

    status: gr.Markdown
    cancel: gr.Button


def build_job_bar() -> JobBar:
    with gr.Row(equal_height=True, elem_id="job-bar"):
        status = gr.Markdown(
            "Progress of the running edit shows here and on the image.",
            elem_id="job-status",
            min_height=48,
        )
        # Cancelling closes the gateway stream, which cancels the worker's job: nothing is
        # saved and the head stays where it was.
        cancel = gr.Button("Cancel", elem_id="cancel-btn", variant="stop", size="sm", scale=0)
    return JobBar(status, cancel)
