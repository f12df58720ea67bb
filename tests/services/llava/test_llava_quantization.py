"""LLAVA_QUANTIZATION: settings, the BitsAndBytesConfig each mode builds, the refusal without
CUDA (in-process and as a real worker process), and /v1/info reporting the mode."""

from __future__ import annotations

import subprocess
from typing import Any

import httpx
import pytest
import torch
from pydantic import ValidationError
from support.procs import ProcessFactory, ServerProcess

from lvi.contracts.llava import LlavaInfo
from services.llava.backend import LlavaBackend
from services.llava.quant import (
    SKIP_MODULES,
    QuantizationUnavailable,
    check_quantization,
    quantization_config,
)
from services.llava.settings import LlavaSettings


def test_setting_defaults_profiles_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert LlavaSettings(profile="gpu").quantization == "none"
    assert LlavaSettings(profile="tiny").quantization == "none"
    sixteen = LlavaSettings(profile="gpu-16gb")
    assert (sixteen.quantization, sixteen.model) == ("4bit", "llava-hf/llava-1.5-7b-hf")
    monkeypatch.setenv("LLAVA_QUANTIZATION", "8bit")
    assert LlavaSettings(profile="gpu-16gb").quantization == "8bit"  # explicit wins
    monkeypatch.setenv("LLAVA_QUANTIZATION", "3bit")
    with pytest.raises(ValidationError):
        LlavaSettings(profile="gpu")


def test_bitsandbytes_config_of_each_mode() -> None:
    from transformers import BitsAndBytesConfig

    assert quantization_config("none", torch.float16) is None
    eight = quantization_config("8bit", torch.float16)
    assert isinstance(eight, BitsAndBytesConfig)
    assert eight.load_in_8bit and not eight.load_in_4bit
    assert eight.llm_int8_skip_modules == SKIP_MODULES
    four = quantization_config("4bit", torch.bfloat16)
    assert isinstance(four, BitsAndBytesConfig)
    assert four.load_in_4bit and not four.load_in_8bit
    assert four.bnb_4bit_quant_type == "nf4" and four.bnb_4bit_use_double_quant
    assert four.bnb_4bit_compute_dtype == torch.bfloat16
    # The vision tower and projector keep fp16 weights.
    assert {"vision_tower", "multi_modal_projector"} <= set(four.llm_int8_skip_modules)
    with pytest.raises(ValueError):
        quantization_config("2bit", torch.float16)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("device", "cuda"), [("cpu", False), ("cpu", True), ("cuda", False), ("cuda:0", False)]
)
def test_quantized_modes_need_cuda(device: str, cuda: bool) -> None:
    check_quantization("none", device, cuda)  # never refused
    for mode in ("8bit", "4bit"):
        with pytest.raises(QuantizationUnavailable) as info:
            check_quantization(mode, device, cuda)  # type: ignore[arg-type]
        assert info.value.status == 503 and "CUDA" in info.value.message
        assert "LLAVA_QUANTIZATION=none" in info.value.message
    check_quantization("4bit", "cuda:1", True)


def test_loading_refuses_quantization_on_this_cpu(lvi_cache: Any) -> None:
    backend = LlavaBackend(LlavaSettings(profile="tiny", quantization="4bit"))
    assert backend.device == "cpu"
    with pytest.raises(QuantizationUnavailable, match="CUDA"):
        backend.load()
    assert backend.model is None  # refused before any weights were read


def test_loading_passes_the_config_to_from_pretrained(
    lvi_cache: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With CUDA (simulated), the real load() asks transformers for a 4-bit model on the GPU."""
    from transformers import AutoModelForImageTextToText, BitsAndBytesConfig

    seen: dict[str, Any] = {}

    class Stop(Exception):
        pass

    def fake_from_pretrained(ref: str, **kwargs: Any) -> Any:
        seen.update(kwargs, ref=ref)
        raise Stop

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(AutoModelForImageTextToText, "from_pretrained", fake_from_pretrained)
    backend = LlavaBackend(LlavaSettings(profile="tiny", quantization="4bit", device="cuda"))
    with pytest.raises(Stop):
        backend.load()
    quant = seen["quantization_config"]
    assert isinstance(quant, BitsAndBytesConfig) and quant.load_in_4bit
    assert quant.bnb_4bit_compute_dtype == torch.float16  # auto dtype on CUDA
    assert seen["device_map"] == "cuda" and seen["dtype"] == torch.float16


def test_worker_process_exits_with_a_message_naming_cuda(procs: ProcessFactory) -> None:
    srv = procs.lvi("worker", "llava", env={"LLAVA_QUANTIZATION": "8bit"}, wait=False)
    assert srv.proc is not None
    try:
        code = srv.proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the worker did not exit:\n{srv.log_tail()}")
    assert code != 0
    log = srv.log_tail(200)
    assert "LLAVA_QUANTIZATION=8bit needs a CUDA GPU" in log, log


def test_info_reports_the_quantization(llava: ServerProcess, upstream: ServerProcess) -> None:
    info = LlavaInfo.model_validate(httpx.get(llava.url + "/v1/info", timeout=10).json())
    assert (info.backend, info.quantization) == ("transformers", "none")
    forwarded = LlavaInfo.model_validate(httpx.get(upstream.url + "/v1/info", timeout=10).json())
    assert (forwarded.backend, forwarded.quantization) == ("openai", None)
