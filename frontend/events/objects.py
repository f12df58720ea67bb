"""The object events of the Edit tab: picking among the instances a segmentation found, and
the removal preview (made when an object is selected and when the dilation slider is
released; Keep commits it as the ordinary remove, Discard hides it)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from frontend.events.edits import Edit, edit_handler
from frontend.events.views import Views
from frontend.handlers import Controller, UiState


def picker_update(ctl: Controller, st: UiState) -> Any:
    """The instance picker for ``st``: hidden unless there are several instances."""
    view = ctl.instances_view(st)
    return gr.CheckboxGroup(choices=view.choices, value=view.chosen, visible=view.visible)


def hidden_preview() -> tuple[Any, ...]:
    return gr.Column(visible=False), None, "", None


def wire_objects(ctl: Controller, views: Views, selected: list[Any]) -> None:
    """``selected``: the events after which a new object is selected (segmentation)."""
    page, edit = views.page, views.page.edit
    picker, preview = edit.picker.instances, edit.preview
    preview_outputs = [preview.panel, preview.image, preview.caption, preview.dilate]

    def on_instances(st: UiState) -> Any:
        return picker_update(ctl, st)

    async def on_preview(st: UiState, dilate_v: float) -> tuple[Any, ...]:
        if not st.mask:  # nothing selected: nothing to preview (no error for a slider move)
            return hidden_preview()
        shown = await ctl.preview_remove(st, int(dilate_v))
        if shown is None:  # the head moved in another tab: nothing to show
            return hidden_preview()
        return gr.Column(visible=True), shown.image, shown.caption, shown.dilate

    async def on_choose(st: UiState, chosen: list[str] | None) -> tuple[Any, ...]:
        st, view = await ctl.choose(st, chosen)
        return views.mask(st, view)

    def show_move_box(st: UiState) -> Any:
        return ctl.move_box(st)

    def on_selection_cleared(st: UiState) -> tuple[Any, ...]:
        """The selection went (a new head, cleared prompts): its preview and, when the
        instances went too, the picker go with it."""
        if st.mask:
            return gr.skip(), *(gr.skip() for _ in preview_outputs)
        picker_value = gr.skip() if st.instances else picker_update(ctl, st)
        return picker_value, *hidden_preview()

    preview_event: dict[str, Any] = {
        "fn": on_preview,
        "inputs": [page.state, edit.dilate],
        "outputs": preview_outputs,
        "api_visibility": "private",
        "trigger_mode": "always_last",  # a newer dilation supersedes a preview under way
    }
    previews: list[Any] = [
        event.then(on_instances, [page.state], [picker], api_visibility="private").then(
            **preview_event
        )
        for event in selected
    ]
    previews.append(
        picker.input(on_choose, [page.state, picker], views.mask_outputs, api_visibility="private")
        .then(show_move_box, [page.state], [edit.move_box], api_visibility="private")
        .then(**preview_event)
    )
    previews.append(edit.dilate.release(**preview_event))
    # A preview still under way when the head changes (or the prompts are cleared) would
    # show a fill of an image that is no longer the head: it is cancelled, and hidden.
    page.image.summary.change(
        hidden_preview, None, preview_outputs, cancels=previews, api_visibility="private"
    )
    edit.clear_prompts.click(None, cancels=previews, api_visibility="private")
    edit.mask_info.change(
        on_selection_cleared,
        [page.state],
        [picker, *preview_outputs],
        api_visibility="private",
    )

    keep = Edit("remove", ctl.remove, {"dilate_v": preview.dilate}, diffusion=False)
    preview.keep.click(
        edit_handler(keep, views),
        [page.state, preview.dilate],
        views.head_outputs,
        api_visibility="private",
        show_progress_on=[page.image.editor, page.jobs.status],
    ).then(hidden_preview, None, preview_outputs, api_visibility="private")
    preview.discard.click(
        hidden_preview, None, preview_outputs, cancels=previews, api_visibility="private"
    )
