"""The mask brush's events, and the guards that keep the editors and annotators honest.

- Apply: the strokes on the brush canvas are added to (or erased from) the selected mask.
- Whenever the selected object changes (``mask_view`` changes), the brush canvas shows the
  head with the new mask tinted, and the click image shows a marker on each click.
- The editors' own Undo and "Clear canvas" could remove the head image the app set (the
  session still said v3): a small script then clicks a hidden button, whose handler puts the
  background back when it is gone.
- The box annotators' label popup: Cancel (or Escape) on a new box deleted the box; the
  script turns it into "keep the box, unlabelled".
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from frontend.events.views import Views, editor_value
from frontend.handlers import Controller, UiState
from frontend.handlers.brush import lost_background

# Runs once per page (``demo.load``). Capture-phase listeners: the components' own handlers
# stop the events' propagation.
GUARDS_JS = """() => {
  const RESTORE = [['#head-editor', '#head-editor-restore'], ['#mask-brush', '#mask-brush-restore']];
  const newBoxPopup = () => {
    const popup = document.querySelector('#model-box-edit');
    // Only the popup of a box just drawn has the lock button; an existing box's has Remove.
    return popup && popup.querySelector('button[aria-label="Lock label detail"]') ? popup : null;
  };
  const okOf = (popup) =>
    [...popup.querySelectorAll('button')].find((b) => b.textContent.trim() === 'OK');
  const keepBox = (event) => {
    const popup = newBoxPopup();
    const ok = popup && okOf(popup);
    if (!ok) return false;
    event.preventDefault();
    event.stopImmediatePropagation();
    ok.click();
    return true;
  };
  document.addEventListener('click', (event) => {
    const button = event.target.closest && event.target.closest('button');
    if (!button) return;
    const popup = newBoxPopup();
    if (popup && popup.contains(button) && button.textContent.trim() === 'Cancel') {
      keepBox(event);
      return;
    }
    const label = (button.getAttribute('aria-label') || button.title || '').toLowerCase();
    if (!label.includes('undo') && !label.includes('clear')) return;
    for (const [editor, restore] of RESTORE) {
      const root = document.querySelector(editor);
      if (root && root.contains(button)) {
        setTimeout(() => document.querySelector(restore)?.click(), 400);
      }
    }
  }, true);
  window.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') keepBox(event);
  }, true);
}"""


def wire_brush(demo: gr.Blocks, ctl: Controller, views: Views) -> None:
    page, edit = views.page, views.page.edit
    brush = edit.brush

    async def on_apply(st: UiState, brush_v: dict[str, Any] | None, mode: str) -> tuple[Any, ...]:
        st, view = await ctl.brush_mask(st, brush_v, mode)
        return views.mask(st, view)

    async def on_mask_shown(st: UiState) -> tuple[Any, ...]:
        return editor_value(await ctl.brush_view(st)), ctl.click_view(st)

    def show_move_box(st: UiState) -> Any:
        return ctl.move_box(st)

    brush.apply.click(
        on_apply, [page.state, brush.editor, brush.mode], views.mask_outputs, api_name="brush_mask"
    ).then(show_move_box, [page.state], [edit.move_box], api_visibility="private")
    edit.mask_view.change(
        on_mask_shown,
        [page.state],
        [brush.editor, edit.seg_click],
        api_visibility="private",
        show_progress="hidden",
    )
    wire_restore(ctl, views)
    demo.load(None, js=GUARDS_JS)


def wire_restore(ctl: Controller, views: Views) -> None:
    """Hidden buttons the guard script clicks after an editor's own Undo or Clear: the
    background comes back when it is gone (strokes, if any are left, stay)."""
    page = views.page
    brush = page.edit.brush

    def on_restore_head(st: UiState, value: dict[str, Any] | None) -> Any:
        if st.head_path is None or not lost_background(value):
            return gr.skip()
        return editor_value(st.head_path)

    async def on_restore_brush(st: UiState, value: dict[str, Any] | None) -> Any:
        if st.head_path is None or not lost_background(value):
            return gr.skip()
        return editor_value(await ctl.brush_view(st))

    restore_head = gr.Button(visible="hidden", elem_id="head-editor-restore")
    restore_head.click(
        on_restore_head,
        [page.state, page.image.editor],
        [page.image.editor],
        api_visibility="private",
        show_progress="hidden",
    )
    restore_brush = gr.Button(visible="hidden", elem_id="mask-brush-restore")
    restore_brush.click(
        on_restore_brush,
        [page.state, brush.editor],
        [brush.editor],
        api_visibility="private",
        show_progress="hidden",
    )
