"""``python -m frontend.examples``: redraw the bundled example images."""

from frontend.examples import write_examples

for path in write_examples():
    print(path)
