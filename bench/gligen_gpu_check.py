"""Device check of the gligen backend on CUDA with the tiny checkpoints (run from repo root).

Loads both tiny pipelines with the default settings (device auto -> cuda, dtype auto ->
float16), then checks: same seed gives the same bytes (generation and inpainting), pixels
outside the boxes of a non-square input stay identical, a job cancelled from its progress
events stops at that step, and times 25 tiny steps at 64 and 512. Prints CHECK DONE at the end.

    HF_HUB_OFFLINE=1 LVI_CACHE_DIR=/tmp/lvi python3 bench/gligen_gpu_check.py
"""

import time

import numpy as np
import torch

from lvi.contracts.gligen import GenerateRequest
from lvi.images import EncodedImage, encode_image
from lvi.worker import Cancelled, Job
from services.gligen.backend import GligenBackend, boxes_mask, boxes_to_pixels
from services.gligen.settings import GligenSettings

print("torch", torch.__version__, torch.cuda.get_device_name(0))
b = GligenBackend(GligenSettings(profile="tiny"))
t = time.perf_counter()
b.load()
print("load s", round(time.perf_counter() - t, 2))
t = time.perf_counter()
b.warmup()
print("warmup s", round(time.perf_counter() - t, 2))
info = b.info()
print(info)
assert info["device"] == "cuda" and info["dtype"] == "float16", info
print("unet dtype", b.pipes["generate"].unet.dtype, b.pipes["inpaint"].unet.device)

req = GenerateRequest(
    prompt="a cat",
    phrases=["a cat", "a hat"],
    boxes=[[0.1, 0.1, 0.6, 0.6], [0.5, 0.0, 0.9, 0.4]],
    steps=10,
    seed=3,
    width=96,
    height=64,
)
a, a2 = b.generate(req, Job()), b.generate(req, Job())
px = a.image.to_array()
print(
    "generate",
    a.width,
    a.height,
    "same bytes:",
    a.image.data == a2.image.data,
    "std",
    float(px.std()),
    "finite-looking:",
    px.std() > 0,
)

h, w = 131, 203
img = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
boxes = [[0.1, 0.15, 0.35, 0.6], [0.55, 0.4, 0.8, 0.95]]
req2 = GenerateRequest(
    image=encode_image(img), phrases=["a cat", "a hat"], boxes=boxes, steps=10, seed=5
)
r, r2 = b.generate(req2, Job()), b.generate(req2, Job())
out = EncodedImage.from_bytes(r.image.data).to_array()
m = boxes_mask(boxes_to_pixels(boxes, (w, h)), (w, h))
print(
    "inpaint",
    r.width,
    r.height,
    "outside identical:",
    bool(np.array_equal(out[~m], img[~m])),
    "inside changed:",
    bool((out[m] != img[m]).any()),
    "same bytes:",
    r.image.data == r2.image.data,
    "crop",
    r.crop,
    "region",
    r.region,
)


class StopAt(Job):
    def __init__(self, n):
        super().__init__()
        self.n = n
        self.seen = 0
        self._emit = self.on

    def on(self, ev):
        if type(ev).__name__ == "Progress":
            self.seen = ev.step
            if ev.step >= self.n:
                self.cancel_event.set()


j = StopAt(3)
try:
    b.generate(GenerateRequest(prompt="x", steps=100, width=256, height=256), j)
    print("cancel: NOT cancelled")
except Cancelled:
    print("cancel: stopped after", j.seen, "of 100 steps")

for size, steps in ((64, 25), (512, 25)):
    rq = GenerateRequest(
        prompt="a cat",
        phrases=["a cat"],
        boxes=[[0.1, 0.1, 0.6, 0.6]],
        steps=steps,
        seed=1,
        width=size,
        height=size,
    )
    b.generate(rq, Job())
    torch.cuda.synchronize()
    ts = []
    for _ in range(5):
        t = time.perf_counter()
        b.generate(rq, Job())
        ts.append(time.perf_counter() - t)
    print(f"tiny generate {size}x{size} {steps} steps: median {sorted(ts)[2] * 1000:.1f} ms")
print("CHECK DONE")
