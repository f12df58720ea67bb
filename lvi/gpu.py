"""Sharing one GPU between worker processes: a per-process cap on the caching allocator.

Each worker is its own process with its own CUDA context and PyTorch caching allocator. The
allocator keeps freed blocks for reuse, so a worker that once peaked (a long chat, a 2048 px
segment) holds that memory for good, and the next worker's allocation fails although the
card's total would fit both. ``<PREFIX>_GPU_MEMORY_FRACTION`` (e.g.
``LLAVA_GPU_MEMORY_FRACTION=0.45``) caps what this process's allocator may hold: past it the
allocator frees its cache and retries, and only then raises out-of-memory in this worker, never
in a neighbour. It does not count the CUDA context itself (~0.3-0.5 GB per process), so the
fractions of the workers on one card should add up to 1 minus that overhead
(docs/DEPLOY.md, "One card, all workers").
"""

from __future__ import annotations

import logging

log = logging.getLogger("lvi.gpu")


def apply_memory_fraction(fraction: float | None, device: str) -> bool:
    """Cap this process's CUDA allocator at ``fraction`` of ``device``'s memory.

    A no-op (returns False) when no fraction is set, when the device is not CUDA, or when torch
    or CUDA is missing: the same settings then run unchanged on a CPU machine.
    """
    if fraction is None:
        return False
    if device != "auto" and not device.startswith("cuda"):
        return False
    try:
        import torch
    except ImportError:
        return False
    if not torch.cuda.is_available():
        log.info("GPU memory fraction %.3f ignored: no CUDA device", fraction)
        return False
    index = torch.device(device).index if device.startswith("cuda") else None
    index = torch.cuda.current_device() if index is None else index
    torch.cuda.set_per_process_memory_fraction(fraction, index)
    total = torch.cuda.get_device_properties(index).total_memory
    log.info(
        "GPU memory capped at %.3f of cuda:%d (%.2f GiB)", fraction, index, fraction * total / 2**30
    )
    return True
