"""The session picker ("My sessions"): the user's sessions as thumbnails to open, rename,
delete (after a confirmation) and export as a zip."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from frontend.handlers import Library


@dataclass
class LibraryPanel:
    """The picker's components; ``listing`` holds the :class:`Library` the gallery shows."""

    accordion: gr.Accordion
    listing: gr.State
    is_open: gr.State  # the accordion's state: the list follows the tab only while open
    gallery: gr.Gallery
    more: gr.Button  # the next page of older sessions, shown while there is one
    selected: gr.Markdown
    refresh: gr.Button
    open: gr.Button
    title: gr.Textbox
    rename: gr.Button
    delete: gr.Button
    confirm_row: gr.Row
    confirm_text: gr.Markdown
    confirm: gr.Button
    cancel: gr.Button
    export: gr.Button
    export_file: gr.File


def build_library_panel() -> LibraryPanel:
    """Inside the current Blocks context: a closed accordion with the picker."""
    listing = gr.State(Library())
    is_open = gr.State(False)
    with gr.Accordion("My sessions", open=False, elem_id="library") as accordion:
        gallery = gr.Gallery(
            label="Your sessions, most recently changed first: click one to select it",
            elem_id="library-gallery",
            columns=5,
            height=280,
            fit_columns=False,
            allow_preview=False,
            object_fit="contain",
            interactive=False,
        )
        more = gr.Button(
            "Show older sessions", elem_id="library-more-btn", size="sm", visible=False
        )
        selected = gr.Markdown("No sessions yet.", elem_id="library-selected")
        title = gr.Textbox(
            label="Title of the selected session (edit it, then Rename or press Enter)",
            elem_id="library-title",
            max_lines=1,
            max_length=200,
        )
        with gr.Row():
            open_btn = gr.Button("Open", elem_id="library-open-btn", size="sm", variant="primary")
            rename = gr.Button("Rename", elem_id="library-rename-btn", size="sm")
            export = gr.Button("Export as zip", elem_id="library-export-btn", size="sm")
            delete = gr.Button("Delete…", elem_id="library-delete-btn", size="sm", variant="stop")
            refresh = gr.Button("Refresh list", elem_id="library-refresh-btn", size="sm")
        with gr.Row(visible=False, elem_id="library-confirm") as confirm_row:
            confirm_text = gr.Markdown(elem_id="library-confirm-text")
            confirm = gr.Button(
                "Yes, delete it", elem_id="library-delete-confirm-btn", size="sm", variant="stop"
            )
            cancel = gr.Button("Cancel", elem_id="library-delete-cancel-btn", size="sm")
        export_file = gr.File(
            label="Session zip (every version, the masks, the chat as JSON and Markdown)",
            elem_id="library-export-file",
            visible=False,
            interactive=False,
        )
    return LibraryPanel(
        accordion,
        listing,
        is_open,
        gallery,
        more,
        selected,
        refresh,
        open_btn,
        title,
        rename,
        delete,
        confirm_row,
        confirm_text,
        confirm,
        cancel,
        export,
        export_file,
    )
