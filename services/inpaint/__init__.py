"""The inpaint worker: background filling (LaMa or OpenCV) and compositing."""
