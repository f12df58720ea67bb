"""<PREFIX>_GPU_MEMORY_FRACTION: validated by every worker's settings and applied with
torch.cuda.set_per_process_memory_fraction before the backend loads (a no-op without CUDA)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from pydantic import ValidationError

from lvi.gpu import apply_memory_fraction
from services.inpaint.settings import InpaintSettings
from services.llava.settings import LlavaSettings


def test_fraction_is_a_per_worker_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert LlavaSettings().gpu_memory_fraction is None
    monkeypatch.setenv("LLAVA_GPU_MEMORY_FRACTION", "0.34")
    monkeypatch.setenv("INPAINT_GPU_MEMORY_FRACTION", "0.04")
    assert LlavaSettings().gpu_memory_fraction == 0.34
    assert InpaintSettings().gpu_memory_fraction == 0.04
    for bad in ("0", "1.5", "-0.1"):
        monkeypatch.setenv("LLAVA_GPU_MEMORY_FRACTION", bad)
        with pytest.raises(ValidationError):
            LlavaSettings()


def test_no_cap_without_a_fraction_or_without_cuda() -> None:
    assert apply_memory_fraction(None, "cuda") is False
    assert apply_memory_fraction(0.5, "cpu") is False
    assert not torch.cuda.is_available()  # this machine: the setting is ignored, not an error
    assert apply_memory_fraction(0.5, "auto") is False


@pytest.mark.parametrize(("device", "index"), [("auto", 0), ("cuda", 0), ("cuda:1", 1)])
def test_cap_is_applied_on_the_worker_device(
    device: str, index: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[float, int]] = []

    class Props:
        total_memory = 16 * 2**30

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: Props())

    def record(fraction: float, dev: Any = None) -> None:
        calls.append((fraction, dev))

    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", record)
    assert apply_memory_fraction(0.34, device) is True
    assert calls == [(0.34, index)]


def test_runtime_caps_memory_before_the_backend_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    import lvi.worker as worker
    from lvi.worker import WorkerMetrics, WorkerRuntime

    order: list[str] = []

    class Backend:
        name = "fake"

        def load(self) -> None:
            order.append("load")

        def warmup(self) -> None:
            order.append("warmup")

        def info(self) -> dict[str, Any]:
            return {}

    def cap(fraction: float | None, device: str) -> bool:
        order.append(f"cap {fraction} {device}")
        return False

    monkeypatch.setattr(worker, "apply_memory_fraction", cap)
    settings = InpaintSettings(gpu_memory_fraction=0.25, device="cuda:0")
    rt = WorkerRuntime("inpaint", settings, Backend(), WorkerMetrics("inpaint"))
    asyncio.run(rt.load())
    assert order == ["cap 0.25 cuda:0", "load", "warmup"] and rt.ready
