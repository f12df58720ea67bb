"""The image panel: the head image (an editor whose brush paints strokes), its summary, the
session buttons, the history strip and the examples."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr


@dataclass
class ImagePanel:
    """The head image and everything that moves through versions."""

    editor: gr.ImageEditor
    summary: gr.Markdown
    upload: gr.UploadButton
    undo: gr.Button
    redo: gr.Button
    download: gr.DownloadButton
    new_session: gr.Button
    history: gr.Gallery
    examples: gr.Gallery


def _history_strip() -> gr.Gallery:
    return gr.Gallery(
        label="History: click a version to check it out",
        elem_id="history",
        columns=8,
        rows=1,
        height=130,
        allow_preview=False,
        object_fit="contain",
        interactive=False,
        fit_columns=False,
    )


def _example_strip(examples: list[str]) -> gr.Gallery:
    return gr.Gallery(
        value=[(p, p.rsplit("/", 1)[-1].removesuffix(".png")) for p in examples],
        label="Examples: click one to start with it",
        elem_id="examples",
        columns=len(examples),
        rows=1,
        height=190,
        allow_preview=False,
        object_fit="contain",
        interactive=False,
    )


def build_image_panel(examples: list[str]) -> ImagePanel:
    """Inside the current Blocks context: the image, its buttons and the two strips."""
    editor = gr.ImageEditor(
        label="Image (the brush paints a stroke for 'segment by stroke')",
        elem_id="head-editor",
        type="numpy",
        sources=[],
        transforms=[],
        layers=False,
        format="png",
        brush=gr.Brush(default_size=20, colors=["#ff3b30"], color_mode="fixed"),
        height=440,
        buttons=["download", "fullscreen"],
    )
    summary = gr.Markdown(elem_id="head-summary")
    with gr.Row():
        upload = gr.UploadButton(
            "Upload image", file_types=["image"], elem_id="upload-btn", size="sm"
        )
        undo = gr.Button("Undo", elem_id="undo-btn", size="sm", interactive=False)
        redo = gr.Button("Redo", elem_id="redo-btn", size="sm", interactive=False)
        download = gr.DownloadButton(
            "Download", elem_id="download-btn", size="sm", interactive=False
        )
        new_session = gr.Button("New session", elem_id="new-session-btn", size="sm")
    return ImagePanel(
        editor,
        summary,
        upload,
        undo,
        redo,
        download,
        new_session,
        _history_strip(),
        _example_strip(examples),
    )
