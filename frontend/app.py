"""The Gradio Blocks app: layout and event wiring only; the logic is in ``frontend.handlers``.

Layout (like the original LLaVA-Interactive): the image on the left with its history strip,
the editing tabs under it, the chat on the right. Unlike the original, every option is
visible (steps, guidance, scheduled sampling, seed; temperature, top-p, max tokens), every
edit makes a new version that undo/redo/checkout can reach, and each browser keeps its own
gateway session across reloads (its id lives in the browser's localStorage).

``create_app(settings, client)`` builds the Blocks; ``create_server`` mounts it on a FastAPI
app (what ``lvi frontend`` serves, readiness: ``GET /`` returns 200).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import gradio as gr
from gradio_image_annotation import image_annotator

from frontend.examples import GENERATE_EXAMPLES, example_paths
from frontend.handlers import (
    ChatParams,
    Controller,
    DiffusionParams,
    Gateway,
    HeadView,
    ImageFiles,
    Loaded,
    MaskView,
    UiState,
    seed_or_none,
)
from frontend.settings import FrontendSettings

TITLE = "LLaVA-Interactive"
CSS = """
#tiny-banner { background: #fff4ce; border: 1px solid #e0b400; border-radius: 6px;
  padding: 4px 12px; }
#head-summary p { margin: 0; }
"""
MAX_UPLOAD = "64mb"
MASK_COLORS = {"include": "#16a34a", "exclude": "#dc2626"}


def _progress_callback(progress: gr.Progress) -> Callable[[Any], None]:
    """Map the gateway's progress events onto Gradio's progress bar."""

    def on_progress(event: Any) -> None:
        if event.total:
            progress((event.step or 0, event.total), desc=event.stage, unit="steps")
        else:
            progress(None, desc=event.stage)

    return on_progress


def create_app(
    settings: FrontendSettings | None = None,
    client: Gateway | None = None,
    files: ImageFiles | None = None,
) -> gr.Blocks:
    """Build the UI. ``client`` defaults to an :class:`lvi_client.AsyncLviClient` for
    ``settings.gateway_url``; tests may pass a fake with the same methods."""
    settings = settings or FrontendSettings()
    if client is None:
        from lvi_client import AsyncLviClient

        key = settings.api_key.get_secret_value() if settings.api_key else None
        client = AsyncLviClient(settings.gateway_url, api_key=key)
    ctl = Controller(client, files)
    # Stable across restarts, so a reload after a frontend restart still resumes. It only
    # keeps localStorage from being edited by hand: the session id is no secret to its owner.
    storage_secret = hashlib.sha256(f"lvi-frontend|{settings.gateway_url}".encode()).hexdigest()
    examples = [str(p) for p in example_paths()]

    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        browser = gr.BrowserState(
            {"session_id": None}, storage_key="lvi-session", secret=storage_secret[:32]
        )
        state = gr.State(UiState())
        gr.Markdown(
            f"# {TITLE}\nChat about an image, segment and edit it, or generate a new one. "
            "Every edit is a new version: undo, redo or click the history to go back.",
            elem_id="title",
        )
        banner = gr.Markdown(visible=False, elem_id="tiny-banner")
        with gr.Row(equal_height=False):
            # ---- left: the image, its history, the editing tabs -----------------------------
            with gr.Column(scale=6):
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
                history = gr.Gallery(
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
                example_gallery = gr.Gallery(
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
                with gr.Tabs(elem_id="tabs"):
                    with gr.Tab("Remove or change objects", id="edit", elem_id="tab-edit"):
                        gr.Markdown(
                            "Select an object with any mix of prompts: a box, clicks "
                            "(include/exclude), brush strokes on the image above, or a "
                            "referring phrase. Then remove it, move it, or replace it."
                        )
                        with gr.Row():
                            with gr.Column(min_width=240):
                                # Not single_box: that switches the annotator to drag mode
                                # after one box, for good; several boxes are valid prompts.
                                seg_box = image_annotator(
                                    label="Draw a box around the object",
                                    elem_id="seg-box",
                                    show_remove_button=True,
                                    disable_edit_boxes=True,
                                    sources=None,
                                    image_type="filepath",
                                    show_clear_button=False,
                                    show_download_button=False,
                                    height=280,
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
                                segment_btn = gr.Button(
                                    "Segment", variant="primary", elem_id="segment-btn"
                                )
                                clear_prompts = gr.Button(
                                    "Clear prompts", elem_id="clear-prompts-btn", size="sm"
                                )
                        with gr.Row():
                            with gr.Column(min_width=240):
                                mask_view = gr.AnnotatedImage(
                                    label="Selected object",
                                    elem_id="mask-view",
                                    height=280,
                                    color_map=MASK_COLORS,
                                )
                                mask_info = gr.Markdown(elem_id="mask-info")
                            with gr.Column(min_width=240):
                                # Moving: drag the object's box to its new place.
                                move_box = image_annotator(
                                    label="Move: drag the object's box to its new place",
                                    elem_id="move-box",
                                    single_box=True,
                                    disable_edit_boxes=True,
                                    sources=None,
                                    image_type="filepath",
                                    show_clear_button=False,
                                    show_download_button=False,
                                    height=280,
                                )
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
                            remove_btn = gr.Button(
                                "Remove object", variant="stop", elem_id="remove-btn", scale=1
                            )
                        with gr.Row(equal_height=True):
                            move_phrase = gr.Textbox(
                                label="Move: regenerate the object as (optional; without a "
                                "phrase its own pixels move)",
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
                                label="Only inside its mask (not its whole box)",
                                elem_id="replace-use-mask",
                                scale=1,
                            )
                            replace_btn = gr.Button(
                                "Replace object", elem_id="replace-btn", scale=1
                            )
                    with gr.Tab("Inpaint new objects", id="inpaint", elem_id="tab-inpaint"):
                        gr.Markdown(
                            "Draw a box for each new object, then give each its phrase: "
                            "click a box to label it, or list the phrases below in drawing "
                            "order."
                        )
                        inpaint_boxes = image_annotator(
                            label="Boxes for new objects",
                            elem_id="inpaint-boxes",
                            sources=None,
                            image_type="filepath",
                            show_clear_button=False,
                            show_download_button=False,
                            show_remove_button=True,
                            height=380,
                        )
                        inpaint_phrases = gr.Textbox(
                            label="Phrases for unlabelled boxes (drawing order, ';' between)",
                            placeholder="a cat; a hat",
                            elem_id="inpaint-phrases",
                        )
                        inpaint_prompt = gr.Textbox(
                            label="Caption (optional)", elem_id="inpaint-prompt"
                        )
                        inpaint_btn = gr.Button(
                            "Generate", variant="primary", elem_id="inpaint-btn"
                        )
                    with gr.Tab("Generate new image", id="generate", elem_id="tab-generate"):
                        gen_prompt = gr.Textbox(
                            label="Caption",
                            placeholder="a cat sitting on a sofa in a living room",
                            elem_id="gen-prompt",
                        )
                        gen_boxes = image_annotator(
                            label="Optional layout: draw boxes on the canvas and label them",
                            elem_id="gen-boxes",
                            sources=None,
                            image_type="filepath",
                            show_clear_button=False,
                            show_download_button=False,
                            show_remove_button=True,
                            height=320,
                        )
                        gen_phrases = gr.Textbox(
                            label="Phrases for unlabelled boxes (drawing order, ';' between)",
                            elem_id="gen-phrases",
                        )
                        with gr.Row():
                            gen_width = gr.Slider(
                                256, 1024, value=512, step=64, label="Width", elem_id="gen-width"
                            )
                            gen_height = gr.Slider(
                                256, 1024, value=512, step=64, label="Height", elem_id="gen-height"
                            )
                        gen_btn = gr.Button("Generate", variant="primary", elem_id="gen-btn")
                        gr.Examples(
                            [list(e) for e in GENERATE_EXAMPLES],
                            [gen_prompt, gen_phrases],
                            label="Example captions",
                        )
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
                            label="Scheduled sampling τ (Generate tab: grounding for this "
                            "fraction of the steps)",
                            elem_id="beta",
                        )
                        seed = gr.Number(
                            value=-1,
                            precision=0,
                            minimum=-1,
                            label="Seed (-1: random; the seed used is shown with the version)",
                            elem_id="seed",
                        )
            # ---- right: the chat ------------------------------------------------------------
            with gr.Column(scale=4):
                chatbot = gr.Chatbot(
                    label="Chat about the current image (replies stream in)",
                    elem_id="chat",
                    height=640,
                    buttons=["copy"],
                )
                with gr.Row():
                    chat_in = gr.Textbox(
                        placeholder="Ask about the image and press Enter",
                        show_label=False,
                        elem_id="chat-input",
                        scale=5,
                    )
                    send = gr.Button("Send", variant="primary", elem_id="chat-send", scale=1)
                clear_chat = gr.Button("Clear chat", elem_id="chat-clear", size="sm")
                with gr.Accordion("Chat options", open=True, elem_id="chat-options"):
                    temperature = gr.Slider(
                        0, 1, value=0.2, step=0.05, label="Temperature", elem_id="temperature"
                    )
                    top_p = gr.Slider(0.05, 1, value=0.7, step=0.05, label="Top-p", elem_id="top-p")
                    max_tokens = gr.Slider(
                        16,
                        1024,
                        value=512,
                        step=16,
                        label="Max output tokens",
                        elem_id="max-tokens",
                    )

        head_outputs = [
            state,
            editor,
            summary,
            history,
            download,
            seg_box,
            seg_click,
            move_box,
            inpaint_boxes,
            mask_view,
            mask_info,
            undo,
            redo,
        ]
        mask_outputs = [state, mask_view, mask_info, move_box]

        def head_updates(st: UiState, view: HeadView) -> tuple[Any, ...]:
            image = view.image
            annotated = {"image": image, "boxes": []} if image else None
            editor_value = (
                {"background": image, "layers": [], "composite": image} if image else None
            )
            return (
                st,
                editor_value,
                view.summary,
                gr.Gallery(value=view.gallery, selected_index=view.selected),
                gr.DownloadButton(value=view.download, interactive=image is not None),
                annotated,
                image,
                annotated,
                annotated,
                None,
                "",
                gr.Button(interactive=view.can_undo),
                gr.Button(interactive=view.can_redo),
            )

        def mask_updates(st: UiState, view: MaskView) -> tuple[Any, ...]:
            # The move box is first emptied: the annotator picks drag mode only when it
            # shows an image that already has a box (then ``show_move_box`` sets it).
            return st, (view.image, view.annotations), view.summary, None

        def diffusion(steps_v: float, guidance_v: float, seed_v: float | None) -> DiffusionParams:
            return DiffusionParams(int(steps_v), float(guidance_v), seed_or_none(seed_v))

        def loaded_updates(loaded: Loaded) -> tuple[Any, ...]:
            banner_update = gr.Markdown(value=loaded.banner or "", visible=bool(loaded.banner))
            return (
                *head_updates(loaded.state, loaded.head),
                loaded.chat,
                banner_update,
                loaded.stored,
                ctl.canvas(loaded.gen_size, loaded.gen_size, None),
                loaded.gen_size,  # width and height default to the model's native size
                loaded.gen_size,
            )

        load_outputs = [*head_outputs, chatbot, banner, browser, gen_boxes, gen_width, gen_height]

        # ---- sessions -----------------------------------------------------------------------
        async def on_load(stored: dict[str, Any] | None) -> tuple[Any, ...]:
            return loaded_updates(await ctl.open(stored))

        async def on_new_session(st: UiState) -> tuple[Any, ...]:
            return loaded_updates(await ctl.new_session(st))

        demo.load(on_load, [browser], load_outputs, api_name="load_session")
        new_session.click(on_new_session, [state], load_outputs, api_name="new_session")

        # ---- image and history --------------------------------------------------------------
        async def on_upload(st: UiState, path: str | None) -> tuple[Any, ...]:
            return head_updates(*await ctl.upload(st, path))

        async def on_example(st: UiState, evt: gr.SelectData) -> tuple[Any, ...]:
            return head_updates(*await ctl.upload(st, examples[evt.index]))

        async def on_undo(st: UiState) -> tuple[Any, ...]:
            return head_updates(*await ctl.undo(st))

        async def on_redo(st: UiState) -> tuple[Any, ...]:
            return head_updates(*await ctl.redo(st))

        async def on_checkout(st: UiState, version: float) -> tuple[Any, ...]:
            return head_updates(*await ctl.checkout(st, int(version)))

        async def on_history(st: UiState, evt: gr.SelectData) -> tuple[Any, ...]:
            return head_updates(*await ctl.checkout_index(st, int(evt.index)))

        async def on_refresh(st: UiState) -> tuple[Any, ...]:
            return head_updates(*await ctl.refresh(st))

        upload.upload(on_upload, [state, upload], head_outputs, api_name="upload")
        example_gallery.select(on_example, [state], head_outputs, api_visibility="private")
        undo.click(on_undo, [state], head_outputs, api_name="undo")
        redo.click(on_redo, [state], head_outputs, api_name="redo")
        history.select(on_history, [state], head_outputs, api_visibility="private")
        # API-only endpoints (gradio_client): check out a version by number, re-read the head.
        version_in = gr.Number(visible=False, precision=0)
        gr.Button(visible=False).click(
            on_checkout, [state, version_in], head_outputs, api_name="checkout"
        )
        gr.Button(visible=False).click(on_refresh, [state], head_outputs, api_name="refresh")

        # ---- segmentation -------------------------------------------------------------------
        async def on_segment(
            st: UiState,
            box_v: dict[str, Any] | None,
            editor_v: dict[str, Any] | None,
            text: str | None,
        ) -> tuple[Any, ...]:
            st, view = await ctl.segment(st, box_value=box_v, editor_value=editor_v, text=text)
            return mask_updates(st, view)

        async def on_click(
            st: UiState,
            mode: str,
            box_v: dict[str, Any] | None,
            editor_v: dict[str, Any] | None,
            text: str | None,
            evt: gr.SelectData,
        ) -> tuple[Any, ...]:
            st, view = await ctl.click(
                st,
                evt.index,
                mode != "exclude",
                box_value=box_v,
                editor_value=editor_v,
                text=text,
            )
            return mask_updates(st, view)

        def show_move_box(st: UiState) -> Any:
            return ctl.move_box(st)

        def on_clear_prompts(st: UiState) -> tuple[Any, ...]:
            st = ctl.clear_prompts(st)
            annotated = {"image": st.head_path, "boxes": []} if st.head_path else None
            editor_value = (
                {"background": st.head_path, "layers": [], "composite": st.head_path}
                if st.head_path
                else None
            )
            return st, annotated, editor_value, "", None, "", annotated

        seg_inputs = [state, seg_box, editor, seg_text]
        segment_btn.click(on_segment, seg_inputs, mask_outputs, api_name="segment").then(
            show_move_box, [state], [move_box], api_visibility="private"
        )
        seg_text.submit(on_segment, seg_inputs, mask_outputs, api_visibility="private").then(
            show_move_box, [state], [move_box], api_visibility="private"
        )
        seg_click.select(
            on_click,
            [state, click_mode, seg_box, editor, seg_text],
            mask_outputs,
            api_visibility="private",
        ).then(show_move_box, [state], [move_box], api_visibility="private")
        clear_prompts.click(
            on_clear_prompts,
            [state],
            [state, seg_box, editor, seg_text, mask_view, mask_info, move_box],
            api_visibility="private",
        )

        # ---- edits (progress from the gateway's stream) ---------------------------------------
        async def on_remove(
            st: UiState, dilate_v: float, progress: gr.Progress = gr.Progress()
        ) -> tuple[Any, ...]:
            progress(0, desc="remove")
            return head_updates(*await ctl.remove(st, int(dilate_v), _progress_callback(progress)))

        async def on_move(
            st: UiState,
            box_v: dict[str, Any] | None,
            phrase: str | None,
            dilate_v: float,
            steps_v: float,
            guidance_v: float,
            seed_v: float | None,
            progress: gr.Progress = gr.Progress(),
        ) -> tuple[Any, ...]:
            progress(0, desc="move")
            result = await ctl.move(
                st,
                box_v,
                phrase,
                int(dilate_v),
                diffusion(steps_v, guidance_v, seed_v),
                _progress_callback(progress),
            )
            return head_updates(*result)

        async def on_replace(
            st: UiState,
            phrase: str | None,
            use_mask: bool,
            steps_v: float,
            guidance_v: float,
            seed_v: float | None,
            progress: gr.Progress = gr.Progress(),
        ) -> tuple[Any, ...]:
            progress(0, desc="replace")
            result = await ctl.replace_object(
                st,
                phrase,
                use_mask,
                diffusion(steps_v, guidance_v, seed_v),
                _progress_callback(progress),
            )
            return head_updates(*result)

        async def on_inpaint(
            st: UiState,
            box_v: dict[str, Any] | None,
            phrases: str | None,
            prompt: str | None,
            steps_v: float,
            guidance_v: float,
            seed_v: float | None,
            progress: gr.Progress = gr.Progress(),
        ) -> tuple[Any, ...]:
            progress(0, desc="inpaint")
            result = await ctl.inpaint(
                st,
                box_v,
                phrases,
                prompt,
                diffusion(steps_v, guidance_v, seed_v),
                _progress_callback(progress),
            )
            return head_updates(*result)

        async def on_generate(
            st: UiState,
            prompt: str | None,
            box_v: dict[str, Any] | None,
            phrases: str | None,
            width: float,
            height: float,
            beta_v: float,
            steps_v: float,
            guidance_v: float,
            seed_v: float | None,
            progress: gr.Progress = gr.Progress(),
        ) -> tuple[Any, ...]:
            progress(0, desc="generate")
            result = await ctl.generate(
                st,
                prompt,
                box_v,
                phrases,
                int(width),
                int(height),
                float(beta_v),
                diffusion(steps_v, guidance_v, seed_v),
                _progress_callback(progress),
            )
            return head_updates(*result)

        def on_canvas(width: float, height: float, box_v: dict[str, Any] | None) -> Any:
            return ctl.canvas(int(width), int(height), box_v)

        gen = [steps, guidance, seed]
        edit_kw: dict[str, Any] = {"show_progress_on": [editor]}
        remove_btn.click(on_remove, [state, dilate], head_outputs, api_name="remove", **edit_kw)
        move_btn.click(
            on_move,
            [state, move_box, move_phrase, dilate, *gen],
            head_outputs,
            api_name="move",
            **edit_kw,
        )
        replace_btn.click(
            on_replace,
            [state, replace_phrase, replace_use_mask, *gen],
            head_outputs,
            api_name="replace",
            **edit_kw,
        )
        inpaint_btn.click(
            on_inpaint,
            [state, inpaint_boxes, inpaint_phrases, inpaint_prompt, *gen],
            head_outputs,
            api_name="inpaint",
            **edit_kw,
        )
        gen_btn.click(
            on_generate,
            [state, gen_prompt, gen_boxes, gen_phrases, gen_width, gen_height, beta, *gen],
            head_outputs,
            api_name="generate",
            **edit_kw,
        )
        for slider in (gen_width, gen_height):
            slider.release(
                on_canvas, [gen_width, gen_height, gen_boxes], [gen_boxes], api_visibility="private"
            )

        # ---- chat ---------------------------------------------------------------------------
        async def on_chat(
            st: UiState,
            message: str | None,
            hist: list[dict[str, Any]] | None,
            temperature_v: float,
            top_p_v: float,
            max_tokens_v: float,
        ) -> AsyncIterator[tuple[Any, ...]]:
            params = ChatParams(float(temperature_v), float(top_p_v), int(max_tokens_v))
            async for updated in ctl.chat(st, message, hist, params):
                yield updated, ""

        async def on_clear_chat(st: UiState) -> list[dict[str, Any]]:
            return await ctl.clear_chat(st)

        chat_inputs = [state, chat_in, chatbot, temperature, top_p, max_tokens]
        chat_kw: dict[str, Any] = {"show_progress": "hidden"}
        chat_in.submit(on_chat, chat_inputs, [chatbot, chat_in], api_name="chat", **chat_kw)
        send.click(on_chat, chat_inputs, [chatbot, chat_in], api_visibility="private", **chat_kw)
        clear_chat.click(on_clear_chat, [state], [chatbot], api_name="clear_chat")

        # A session created lazily (an action before the page load finished) is remembered
        # too, so a reload resumes it.
        def remember(st: UiState, stored: dict[str, Any] | None) -> Any:
            if st.session_id and (stored or {}).get("session_id") != st.session_id:
                return {"session_id": st.session_id}
            return gr.skip()

        state.change(remember, [state, browser], [browser], api_visibility="private", queue=False)

    # I/O-bound handlers (the gateway does admission control): many users at once.
    demo.queue(default_concurrency_limit=32)
    return demo


def create_server(settings: FrontendSettings | None = None, client: Gateway | None = None) -> Any:
    """The Blocks mounted at ``/`` of a FastAPI app (what ``lvi frontend`` serves)."""
    from fastapi import FastAPI

    settings = settings or FrontendSettings()
    if client is None:
        from lvi_client import AsyncLviClient

        key = settings.api_key.get_secret_value() if settings.api_key else None
        client = AsyncLviClient(settings.gateway_url, api_key=key)
    demo = create_app(settings, client)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        aclose = getattr(client, "aclose", None)
        if aclose is not None:
            await aclose()

    app = FastAPI(title=TITLE, lifespan=lifespan, docs_url=None, redoc_url=None)
    return gr.mount_gradio_app(
        app,
        demo,
        path="/",
        css=CSS,
        theme=gr.themes.Soft(),
        ssr_mode=False,
        show_error=False,
        # Uploads land on this server before the gateway checks them: refuse absurd sizes
        # early (the gateway's own limits, smaller, still apply and answer readably).
        max_file_size=MAX_UPLOAD,
        footer_links=["api"],
    )
