"""bench/gpu_bench.py: the scaled-down CPU run, the full configurations' sizes, the GPU run.

The real benchmark needs one CUDA GPU; here it runs with ``--smoke`` (same code, tiny configs,
CPU). The full-size configurations are also built on the meta device (no memory, no time) and
checked against the published parameter counts, so a wrong number in a config is caught
without a GPU.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "gpu_bench.py"
SECTIONS = ["sam", "gdino", "lama", "llava", "gligen", "stack"]
HAS_CUDA = torch.cuda.is_available()


def run_bench(args: list[str], out: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
        check=False,
    )


def positive(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and x > 0


def median(section: dict[str, Any], key: str) -> float:
    value = section[key]["median"]
    assert positive(value), (key, section[key])
    return float(value)


def check_sections(data: dict[str, Any], gligen_steps: tuple[int, ...]) -> None:
    sections = data["sections"]
    assert list(sections) == SECTIONS
    for name, sec in sections.items():
        assert sec["ok"], (name, sec.get("error"), sec.get("traceback"))
        assert positive(sec["section_s"]), name
        assert sec["summary"], name
        if name != "stack":
            assert positive(sec["params"]), name
            assert positive(sec["build_s"]) or sec["build_s"] == 0, name
            assert "peak_alloc_gib" in sec and "memory_after_build" in sec, name

    llava = sections["llava"]
    median(llava, "ttft_s")
    median(llava, "decode_tok_per_s")
    median(llava, "e2e_s")
    assert llava["prompt_tokens"] > llava["image_tokens"] > 0
    assert positive(llava["new_tokens"])

    sam = sections["sam"]
    median(sam, "click_full_s")
    median(sam, "click_cached_s")
    median(sam, "image_embedding_s")

    median(sections["gdino"], "forward_s")

    gligen = sections["gligen"]
    for mode in ("generation", "inpainting"):
        for steps in gligen_steps:
            median(gligen, f"{mode}_{steps}_steps_s")

    lama = sections["lama"]
    median(lama, "fill_s")
    assert lama["torchscript"] in ("script", "trace"), lama["torchscript_errors"]

    stack = sections["stack"]
    assert stack["all_built"]
    assert sorted(stack["workers"]) == sorted(SECTIONS[:-1])
    for name, w in stack["workers"].items():
        assert positive(w["request_s"]), (name, w)


def test_smoke_run_measures_every_section_and_prints_the_table_last(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    proc = run_bench(["--smoke"], out, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    data = json.loads(out.read_text())
    assert data["meta"]["profile"] == "smoke"
    check_sections(data, gligen_steps=(3, 2))
    # CPU: no GPU memory figures, but the keys are there for the GPU run to fill.
    assert data["sections"]["llava"]["peak_alloc_gib"] is None
    lines = proc.stdout.strip().splitlines()
    assert "| worker | measurement | median | weights GiB | peak GiB |" in lines
    assert lines[-1].startswith("total ") and str(out) in lines[-1]
    assert all(f"| {name} |" in proc.stdout for name in SECTIONS)
    # progress is on stderr, with timestamps
    assert "llava: start" in proc.stderr and proc.stderr.lstrip().startswith("[")


def test_only_runs_the_named_sections(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    proc = run_bench(["--smoke", "--only", "lama,stack"], out, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    data = json.loads(out.read_text())
    assert list(data["sections"]) == ["lama", "stack"]
    assert list(data["sections"]["stack"]["workers"]) == ["lama"]


def test_unknown_section_is_refused(tmp_path: Path) -> None:
    proc = run_bench(["--smoke", "--only", "llava,nope"], tmp_path / "x.json", timeout=120)
    assert proc.returncode == 2
    assert "nope" in proc.stdout
    assert not (tmp_path / "x.json").exists()


@pytest.mark.skipif(HAS_CUDA, reason="checks the message shown where there is no GPU")
def test_without_a_gpu_it_says_so_and_exits(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    proc = run_bench([], out, timeout=120)
    assert proc.returncode == 3
    assert "no CUDA GPU" in proc.stderr and "--smoke" in proc.stderr
    assert not out.exists()


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_bench_under_test", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_full_configurations_have_the_published_sizes() -> None:
    """Build every full-size model on the meta device and count its parameters."""
    transformers = pytest.importorskip("transformers")
    diffusers = pytest.importorskip("diffusers")
    gb = load_bench()

    def hf(model_cls: str, config_cls: str, cfg: dict[str, Any]) -> int:
        config = getattr(transformers, config_cls)(**cfg)
        with torch.device("meta"):
            model = getattr(transformers, model_cls)._from_config(config)
        return gb.n_params(model)

    def meta(factory: Any) -> int:
        with torch.device("meta"):
            return gb.n_params(factory())

    def near(n: int, published: float, tol: float = 0.01) -> bool:
        return abs(n - published) <= tol * published

    llava = hf("LlavaForConditionalGeneration", "LlavaConfig", gb.LLAVA_15_7B)
    assert near(llava, 7.06e9), llava  # llava-1.5-7b-hf: 7.06B
    sam = hf("SamModel", "SamConfig", gb.SAM_VIT_H)
    assert near(sam, 641e6), sam  # sam-vit-huge: 641M
    gdino = hf("GroundingDinoForObjectDetection", "GroundingDinoConfig", gb.GDINO_TINY)
    assert near(gdino, 172e6), gdino  # grounding-dino-tiny: 172M
    clip = hf("CLIPTextModel", "CLIPTextConfig", gb.CLIP_L14_TEXT)
    assert near(clip, 123.06e6, 0.001), clip  # CLIP ViT-L/14 text tower: 123.06M

    unet_cls = diffusers.UNet2DConditionModel
    vae = meta(lambda: diffusers.AutoencoderKL(**gb.SD_VAE))
    assert near(vae, 83.65e6, 0.001), vae  # SD VAE: 83.65M
    sd_unet = meta(lambda: unet_cls(**{**gb.GLIGEN_UNET, "attention_type": "default"}))
    assert sd_unet == 859_520_964  # the SD-1.4 UNet exactly: the shared part is right
    gligen = meta(lambda: unet_cls(**gb.GLIGEN_UNET))
    gligen_inpaint = meta(lambda: unet_cls(**{**gb.GLIGEN_UNET, "in_channels": 9}))
    assert 150e6 < gligen - sd_unet < 250e6  # gated self-attention + box projection
    assert gligen_inpaint - gligen == 5 * 320 * 3 * 3  # only conv_in sees 5 more channels

    lama = meta(lambda: gb.LamaLike(**gb.LAMA_BIG))
    assert near(lama, 51e6, 0.03), lama  # big-lama: about 51M


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.timeout(700)
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU (the full-size benchmark)")
def test_full_run_on_a_gpu(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    proc = run_bench([], out, timeout=660)
    data = json.loads(out.read_text())
    assert proc.returncode == 0, (proc.stderr[-4000:], data)
    check_sections(data, gligen_steps=(50, 25))
    sections = data["sections"]
    assert data["meta"]["total_s"] < 600
    for name in SECTIONS[:-1]:
        assert positive(sections[name]["peak_alloc_gib"]), name
    assert sections["llava"]["peak_alloc_gib"] > 13  # 7B parameters in fp16
    stack = sections["stack"]
    llava_weights = sections["llava"]["memory_after_build"]["allocated_gib"]
    assert stack["memory_all_resident"]["allocated_gib"] > llava_weights
    assert stack["peak_alloc_gib"] >= stack["memory_all_resident"]["allocated_gib"]
