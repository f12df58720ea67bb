"""The edit events (remove, move, replace, inpaint, generate), made by one factory.

Each edit is an :class:`Edit` row: its ``api_name``, the names of the parameters its inputs
fill (Gradio shows them as the endpoint's keyword names, so they are part of the API), and
the controller call. :func:`edit_handler` turns a row into the Gradio handler: progress from
the gateway's stream onto the image, the shared diffusion options gathered into
:class:`DiffusionParams`, and the new head shown.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr
from gradio.components import Component

from frontend.events.views import Views
from frontend.handlers import Controller, DiffusionParams, HeadView, UiState, seed_or_none
from frontend.layout import Page

DIFFUSION_PARAMS = ("steps_v", "guidance_v", "seed_v")


def progress_callback(progress: gr.Progress) -> Callable[[Any], None]:
    """Map the gateway's progress events onto Gradio's progress bar."""

    def on_progress(event: Any) -> None:
        if event.total:
            progress((event.step or 0, event.total), desc=event.stage, unit="steps")
        else:
            progress(None, desc=event.stage)

    return on_progress


@dataclass(frozen=True)
class Edit:
    """One edit event.

    ``inputs`` maps the name of each handler parameter to its component (Gradio shows the
    names as the endpoint's keyword names); the state comes first and, when ``diffusion``
    is set, the shared options (steps, guidance, seed) last. ``run`` is called as
    ``run(state, *values, progress)``, the options gathered into one
    :class:`DiffusionParams`.
    """

    name: str
    run: Callable[..., Awaitable[tuple[UiState, HeadView]]]
    inputs: dict[str, Component]
    diffusion: bool = True


def edit_handler(edit: Edit, views: Views) -> Callable[..., Awaitable[tuple[Any, ...]]]:
    """The Gradio handler of one :class:`Edit`."""

    async def handler(*args: Any) -> tuple[Any, ...]:
        st, *values, progress = args
        if edit.diffusion:
            *values, steps_v, guidance_v, seed_v = values
            values.append(DiffusionParams(int(steps_v), float(guidance_v), seed_or_none(seed_v)))
        progress(0, desc=edit.name)
        return views.head(*await edit.run(st, *values, progress_callback(progress)))

    # Gradio reads the parameters from the signature: their names become the endpoint's
    # keyword names, and a ``gr.Progress`` default asks for a progress tracker.
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    names = ("st", *edit.inputs, *(DIFFUSION_PARAMS if edit.diffusion else ()))
    parameters = [inspect.Parameter(name, kind) for name in names]
    parameters.append(inspect.Parameter("progress", kind, default=gr.Progress()))
    handler.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    handler.__name__ = handler.__qualname__ = f"on_{edit.name}"
    return handler


def edits(ctl: Controller, page: Page) -> list[Edit]:
    """The edit events, in the order they are wired."""
    edit, inpaint, gen = page.edit, page.inpaint, page.generate
    return [
        Edit("remove", ctl.remove, {"dilate_v": edit.dilate}, diffusion=False),
        Edit(
            "move",
            ctl.move,
            {"box_v": edit.move_box, "phrase": edit.move_phrase, "dilate_v": edit.dilate},
        ),
        Edit(
            "replace",
            ctl.replace_object,
            {"phrase": edit.replace_phrase, "use_mask": edit.replace_use_mask},
        ),
        Edit(
            "inpaint",
            ctl.inpaint,
            {"box_v": inpaint.boxes, "phrases": inpaint.phrases, "prompt": inpaint.prompt},
        ),
        Edit(
            "generate",
            ctl.generate,
            {
                "prompt": gen.prompt,
                "box_v": gen.boxes,
                "phrases": gen.phrases,
                "width": gen.width,
                "height": gen.height,
                "beta_v": page.advanced.beta,
            },
        ),
    ]


def wire_edits(ctl: Controller, views: Views) -> None:
    """Each edit's button, with the gateway's progress shown on the image and the job bar,
    and the job bar's Cancel."""
    page = views.page
    advanced = page.advanced
    buttons = {
        "remove": page.edit.remove_btn,
        "move": page.edit.move_btn,
        "replace": page.edit.replace_btn,
        "inpaint": page.inpaint.button,
        "generate": page.generate.button,
    }
    events: list[dict[str, Any]] = []  # a Dependency is a dict
    for edit in edits(ctl, page):
        diffusion = [advanced.steps, advanced.guidance, advanced.seed] if edit.diffusion else []
        event = buttons[edit.name].click(
            edit_handler(edit, views),
            [page.state, *edit.inputs.values(), *diffusion],
            views.head_outputs,
            api_name=edit.name,
            # On the image, and on the bar under the tabs where the buttons are.
            show_progress_on=[page.image.editor, page.jobs.status],
        )
        events.append(event)
    # Cancelling the event cancels its handler's task, which closes the gateway stream.
    page.jobs.cancel.click(None, cancels=events, api_visibility="private")
    wire_canvas(ctl, views)


def wire_canvas(ctl: Controller, views: Views) -> None:
    """The Generate tab's canvas follows the size sliders (its boxes scaled along)."""
    gen = views.page.generate

    def on_canvas(width: float, height: float, box_v: dict[str, Any] | None) -> Any:
        return ctl.canvas(int(width), int(height), box_v)

    for slider in (gen.width, gen.height):
        slider.release(
            on_canvas, [gen.width, gen.height, gen.boxes], [gen.boxes], api_visibility="private"
        )
