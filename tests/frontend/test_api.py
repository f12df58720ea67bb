"""The app's named API endpoints, called with ``gradio_client`` against the real stack.

Each ``gradio_client.Client`` is one Gradio session: it gets its own gateway session (the
handlers create one on first use, since an API caller never runs the page load).
"""

from __future__ import annotations

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from tests.frontend.conftest import ROOT, UiStack

pytestmark = pytest.mark.slow
PARK = str(ROOT / "frontend" / "examples" / "park.png")
# Outputs of every endpoint that shows a new head (the gr.State is not among them).
EDITOR, SUMMARY, HISTORY = 0, 1, 2


def test_named_endpoints_drive_a_session(ui_stack: UiStack) -> None:
    ui_stack.require("seem", "inpaint", "llava", "gligen")
    client = Client(ui_stack.frontend.url, verbose=False)
    names = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert {
        "/upload",
        "/undo",
        "/redo",
        "/checkout",
        "/refresh",
        "/segment",
        "/remove",
        "/move",
        "/replace",
        "/inpaint",
        "/generate",
        "/chat",
        "/clear_chat",
        "/new_session",
    } <= names

    out = client.predict(handle_file(PARK), api_name="/upload")
    assert out[SUMMARY].startswith("**v1** of 1 · upload · 640x448")
    gallery = out[HISTORY]  # a gr.Gallery update: value plus the selected (head) index
    assert [item["caption"] for item in gallery["value"]] == ["v1 upload (head)"]
    assert gallery["selected_index"] == 0

    box = {
        "image": handle_file(PARK),
        "boxes": [{"xmin": 330, "ymin": 280, "xmax": 420, "ymax": 370, "label": ""}],
    }
    view, info, _ = client.predict(box, None, "", api_name="/segment")
    assert "score" in info and view["annotations"]

    out = client.predict(10, api_name="/remove")
    assert out[SUMMARY].startswith("**v2** of 2 · remove")
    out = client.predict(api_name="/undo")
    assert out[SUMMARY].startswith("**v1** of 2")
    out = client.predict(2, api_name="/checkout")
    assert out[SUMMARY].startswith("**v2** of 2")

    labelled = {
        "image": handle_file(PARK),
        "boxes": [{"xmin": 40, "ymin": 240, "xmax": 200, "ymax": 400, "label": "a dog"}],
    }
    out = client.predict(labelled, "", "", 4, 7.5, 3, api_name="/inpaint")
    assert out[SUMMARY].startswith("**v3** of 3 · inpaint") and "seed 3" in out[SUMMARY]

    out = client.predict(
        "a cat on a sofa", None, "", 256, 320, 0.3, 2, 7.5, 5, api_name="/generate"
    )
    assert out[SUMMARY].startswith("**v4** of 4 · generate · 256x320 · seed 5")

    history, cleared_input = client.predict(
        "What is in the image?", [], 0.2, 0.7, 24, api_name="/chat"
    )
    assert cleared_input == ""
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert history[-1]["content"]

    # Input mistakes come back as the app's readable message.
    with pytest.raises(AppError, match="Describe the image to generate"):
        client.predict("", None, "", 256, 256, 0.3, 2, 7.5, -1, api_name="/generate")
    with pytest.raises(AppError, match=r"(?i)redo"):
        client.predict(api_name="/redo")


def test_each_client_gets_its_own_session(ui_stack: UiStack) -> None:
    a = Client(ui_stack.frontend.url, verbose=False)
    b = Client(ui_stack.frontend.url, verbose=False)
    out_a = a.predict(handle_file(PARK), api_name="/upload")
    out_b = b.predict(api_name="/refresh")
    assert out_a[SUMMARY].startswith("**v1**")
    assert "No image yet" in out_b[SUMMARY]
