"""Quantized LLaVA (``LLAVA_QUANTIZATION``): 8-bit or 4-bit weights through bitsandbytes.

Why bitsandbytes and not torchao: transformers' ``BitsAndBytesConfig`` quantizes a checkpoint
while it loads (``from_pretrained(..., quantization_config=...)``), from the fp16 safetensors we
already pull, with no calibration and no separate export step, on every CUDA GPU from Turing
(T4) on; it is what the seed's ``--load-8bit``/``--load-4bit`` used, so answers match what its
users know. torchao's int4 weight-only path needs a newer GPU for its fast kernels (its int4
tile-packed layout and float8 paths target Ampere/Hopper) and ties each release to a narrow
torch range; its int8 path is no smaller than LLM.int8(). NF4 with double quantization keeps
LLaVA-1.5-7B's language model near 3.9 GB, which is what lets the whole stack share a 16 GB
card. Both libraries need CUDA for these modes, so on a CPU the worker refuses to start with a
message that says so (:class:`QuantizationUnavailable`) instead of failing deep in a kernel.

The vision tower and the projector stay in fp16 (``llm_int8_skip_modules``): they are small
(0.3 B of 7 B parameters), run once per image, and quantizing them costs answer quality for
almost no memory. ``lm_head`` stays unquantized as transformers does by default.
"""

from __future__ import annotations

from typing import Any

from lvi.contracts.llava import Quantization
from lvi.errors import ServiceUnavailable

SKIP_MODULES = ["vision_tower", "multi_modal_projector", "lm_head"]
"""Modules that keep their fp16 weights (names as in transformers' LLaVA-family models)."""


class QuantizationUnavailable(ServiceUnavailable):
    """``LLAVA_QUANTIZATION`` asks for a mode this machine cannot run (no CUDA)."""

    code = "quantization_unavailable"


def check_quantization(mode: Quantization, device: str, cuda_available: bool) -> None:
    """Refuse 8bit/4bit unless the worker runs on a CUDA device that torch can see."""
    if mode == "none":
        return
    if not device.startswith("cuda") or not cuda_available:
        why = "torch sees no CUDA GPU" if not cuda_available else f"LLAVA_DEVICE is {device!r}"
        raise QuantizationUnavailable(
            f"LLAVA_QUANTIZATION={mode} needs a CUDA GPU (bitsandbytes' {mode} kernels run on "
            f"CUDA only), but {why}. Set LLAVA_QUANTIZATION=none to run in full precision on "
            "this machine, or run the worker on a CUDA GPU (LLAVA_DEVICE=auto or cuda)."
        )


def quantization_config(mode: Quantization, compute_dtype: Any) -> Any | None:
    """transformers' ``BitsAndBytesConfig`` for a mode (``None`` for ``none``).

    ``compute_dtype`` is the torch dtype the matmuls run in (fp16 on CUDA by default).
    """
    if mode == "none":
        return None
    from transformers import BitsAndBytesConfig

    config: Any = BitsAndBytesConfig  # untyped in transformers
    if mode == "8bit":
        # LLM.int8(): int8 weights, outlier features (above the threshold) kept in fp16.
        return config(load_in_8bit=True, llm_int8_threshold=6.0, llm_int8_skip_modules=SKIP_MODULES)
    if mode == "4bit":
        # NF4 + double quantization, fp16 compute: QLoRA's recipe and the seed's --load-4bit.
        return config(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute_dtype,
            llm_int8_skip_modules=SKIP_MODULES,
        )
    raise ValueError(f"LLAVA_QUANTIZATION must be none, 8bit or 4bit, not {mode!r}")
