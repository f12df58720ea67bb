"""The ``lvi`` command: the only package that knows every component.

It runs one component (``lvi worker|gateway|frontend``), the whole stack as supervised local
processes (``lvi up``), and manages model weights (``lvi models pull|build-tiny``). It sits on
top of the layers: it imports the kernel (``lvi``), and the gateway, frontend and workers by
import string when it starts them; nothing imports it.
"""
