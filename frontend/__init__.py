"""The Gradio UI: a thin three-panel app that talks only to the gateway, through the SDK.

``frontend.app.create_app`` builds the ``gr.Blocks``; ``frontend.handlers`` holds the logic
(plain classes that take the SDK client as a dependency); ``frontend.settings`` names the
gateway URL and key, nothing else besides where to listen and how to log.
"""
