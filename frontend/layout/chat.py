"""The chat panel: the conversation, its input and its sampling options."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr


@dataclass
class ChatPanel:
    """The chat column on the right."""

    chatbot: gr.Chatbot
    chat_in: gr.Textbox
    send: gr.Button
    stop: gr.Button
    clear: gr.Button
    act: gr.Checkbox
    temperature: gr.Slider
    top_p: gr.Slider
    max_tokens: gr.Slider


def build_chat_panel() -> ChatPanel:
    chatbot = gr.Chatbot(
        label="Chat about the current image (replies stream in)",
        elem_id="chat",
        height=640,
        buttons=["copy"],
    )
    with gr.Row():
        chat_in = gr.Textbox(
            placeholder="Ask about the image, or say what to change, and press Enter",
            show_label=False,
            elem_id="chat-input",
            scale=5,
        )
        send = gr.Button("Send", variant="primary", elem_id="chat-send", scale=1)
        # Stops the streamed reply: closing the stream cancels the generation in LLaVA.
        stop = gr.Button("Stop", variant="stop", elem_id="chat-stop", scale=1)
    with gr.Row():
        # On by default: "remove the dog", "undo", "add a boat on the left" are done, each
        # step a version (undoable); questions are answered as before. Clicks on the image
        # go with the message ("remove this").
        act = gr.Checkbox(
            value=True,
            label="Chat edits the image",
            info="Plans your message into edits (segment, remove, move, ...) and runs them",
            elem_id="chat-act",
        )
        clear = gr.Button("Clear chat", elem_id="chat-clear", size="sm")
    with gr.Accordion("Chat options", open=True, elem_id="chat-options"):
        temperature = gr.Slider(
            0, 1, value=0.2, step=0.05, label="Temperature", elem_id="temperature"
        )
        top_p = gr.Slider(0.05, 1, value=0.7, step=0.05, label="Top-p", elem_id="top-p")
        max_tokens = gr.Slider(
            16, 1024, value=512, step=16, label="Max output tokens", elem_id="max-tokens"
        )
    return ChatPanel(chatbot, chat_in, send, stop, clear, act, temperature, top_p, max_tokens)
