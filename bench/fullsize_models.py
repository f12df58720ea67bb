#!/usr/bin/env python
"""Full-size models with random weights, saved as the workers load real checkpoints.

The published configurations that ``bench/gpu_bench.py`` builds in memory (LLaVA-1.5-7B, SAM
ViT-H, Grounding DINO Swin-T, the two GLIGEN SD-1.4 pipelines, a LaMa-sized TorchScript file)
are built here with random weights and written with ``save_pretrained`` / ``torch.jit.save``
into one folder per model, the layout of a hub snapshot: config, safetensors weights and the
processor/tokenizer files. Pointing a worker's model setting at the folder (``LLAVA_MODEL``,
``SEEM_MODEL``, ``SEEM_DETECTOR``, ``GLIGEN_MODEL``, ``GLIGEN_INPAINT_MODEL``,
``INPAINT_MODEL``) loads it through the worker's normal loading code, with no download:
:func:`worker_env` gives those variables. Outputs are noise; shapes, kernels and memory are the
real ones.

Tokenizers are built in-process with the published vocabulary sizes (LLaVA's 32064 with
``<image>`` at 32000; BERT's 30522 with Grounding DINO's fixed ids; CLIP's 49408), so that
every id a random model emits decodes to text. ``smoke=True`` builds the scaled-down twins of
``gpu_bench`` instead (seconds on a CPU; what the tests run).

Usage::

    python bench/fullsize_models.py OUT_DIR [--smoke] [--only llava,sam,...] [--device cuda]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gpu_bench as gb
import torch

MODELS = ("llava", "sam", "gdino", "gligen-generation", "gligen-inpainting", "lama")
DONE = ".complete"  # written last: a folder without it is an interrupted build


def _profile(smoke: bool, device: str) -> gb.Profile:
    dev = torch.device(device)
    dtype = torch.float16 if dev.type == "cuda" else torch.float32
    return gb.Profile(smoke=smoke, device=dev, dtype=dtype, reps=1, deadline=float("inf"))


# -- tokenizers with the published vocabulary sizes ---------------------------------------
def llava_tokenizer(vocab_size: int, image_id: int, pad_id: int) -> Any:
    """A word-level tokenizer of ``vocab_size`` entries (ids 0/1/2 unk/bos/eos as Llama's,
    ``<image>`` and ``<pad>`` where LLaVA-1.5 has them); every id decodes to a word."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    fixed = {0: "<unk>", 1: "<s>", 2: "</s>", image_id: "<image>", pad_id: "<pad>"}
    vocab = {fixed.get(i, f"w{i}"): i for i in range(vocab_size)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast: Any = PreTrainedTokenizerFast
    return fast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
        model_max_length=4096,
    )


def bert_tokenizer(vocab_size: int) -> Any:
    """BERT-base-sized vocabulary with Grounding DINO's hard-coded ids (lvi.tiny's rules)."""
    from transformers import BertTokenizer

    from services.seem.tiny import _grounding_vocab

    vocab = _grounding_vocab()
    for i in range(len(vocab), vocab_size):
        vocab[f"[unused{i}]"] = i
    return BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=256)


def clip_tokenizer(vocab_size: int, bos_id: int, eos_id: int) -> Any:
    """lvi.tiny's CLIP BPE padded to ``vocab_size``, with the specials at the config's ids."""
    from transformers import CLIPTokenizer

    from services.gligen.tiny import _tiny_clip_tokenizer

    small = _tiny_clip_tokenizer()
    merges = [tuple(m) for m in json.loads(small.backend_tokenizer.to_str())["model"]["merges"]]
    specials = {bos_id: "<|startoftext|>", eos_id: "<|endoftext|>"}
    symbols = [s for s, _ in sorted(small.get_vocab().items(), key=lambda kv: kv[1])]
    symbols = [s for s in symbols if s not in specials.values()]
    vocab: dict[str, int] = {}
    it = iter(symbols)
    for i in range(max(vocab_size, len(symbols) + 2)):
        vocab[specials[i] if i in specials else next(it, f"<|unused{i}|>")] = i
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


# -- builders --------------------------------------------------------------------------------
def build_llava(out: Path, prof: gb.Profile) -> None:
    from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    from services.llava.tiny import LLAVA_CHAT_TEMPLATE

    raw = prof.cfg(gb.LLAVA_15_7B, gb.LLAVA_SMOKE)
    text = raw["text_config"]
    tokenizer = llava_tokenizer(text["vocab_size"], raw["image_token_index"], text["pad_token_id"])
    cfg = LlavaConfig(**raw)
    model = gb.build_hf(LlavaForConditionalGeneration, cfg, prof, prof.dtype)
    side = cfg.vision_config.image_size
    processor_cls: Any = LlavaProcessor
    processor = processor_cls(
        image_processor=CLIPImageProcessorPil(
            size={"shortest_edge": side}, crop_size={"height": side, "width": side}
        ),
        tokenizer=tokenizer,
        patch_size=cfg.vision_config.patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS token, dropped by "default"
        chat_template=LLAVA_CHAT_TEMPLATE,
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)


def build_sam(out: Path, prof: gb.Profile) -> None:
    from transformers import SamConfig, SamModel, SamProcessor
    from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil

    cfg = SamConfig(**prof.cfg(gb.SAM_VIT_H, gb.SAM_SMOKE))
    model = gb.build_hf(SamModel, cfg, prof, prof.dtype)
    side = cfg.vision_config.image_size
    low = side // cfg.vision_config.patch_size * 4
    image_processor = SamImageProcessorPil(
        size={"longest_edge": side},
        pad_size={"height": side, "width": side},
        mask_size={"longest_edge": low},
        mask_pad_size={"height": low, "width": low},
    )
    model.save_pretrained(out)
    SamProcessor(image_processor=image_processor).save_pretrained(out)


def build_gdino(out: Path, prof: gb.Profile) -> None:
    from transformers import (
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoProcessor,
    )
    from transformers.models.grounding_dino.image_processing_pil_grounding_dino import (
        GroundingDinoImageProcessorPil,
    )

    raw = prof.cfg(gb.GDINO_TINY, gb.GDINO_SMOKE)
    tokenizer = bert_tokenizer(raw["text_config"]["vocab_size"])
    model = gb.build_hf(
        GroundingDinoForObjectDetection, GroundingDinoConfig(**raw), prof, prof.dtype
    )
    size = (
        {"shortest_edge": 128, "longest_edge": 192}  # 1x1 maps would break GroupNorm
        if prof.smoke
        else {"shortest_edge": 800, "longest_edge": 1333}  # the published processor's
    )
    processor: Any = GroundingDinoProcessor(
        image_processor=GroundingDinoImageProcessorPil(size=size), tokenizer=tokenizer
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)


def _build_gligen(out: Path, prof: gb.Profile, in_channels: int) -> None:
    from diffusers import (
        AutoencoderKL,
        PNDMScheduler,
        StableDiffusionGLIGENPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    unet_cfg = {**prof.cfg(gb.GLIGEN_UNET, gb.GLIGEN_UNET_SMOKE), "in_channels": in_channels}
    vae_cfg = prof.cfg(gb.SD_VAE, gb.SD_VAE_SMOKE)
    text_raw = prof.cfg(gb.CLIP_L14_TEXT, gb.CLIP_TEXT_SMOKE)
    tokenizer = clip_tokenizer(
        text_raw["vocab_size"], text_raw["bos_token_id"], text_raw["eos_token_id"]
    )
    text_raw["vocab_size"] = len(tokenizer)
    text = gb.build_hf(CLIPTextModel, CLIPTextConfig(**text_raw), prof, prof.dtype)
    pipe: Any = StableDiffusionGLIGENPipeline(
        vae=gb.build_module(lambda: AutoencoderKL(**vae_cfg), prof, prof.dtype),
        text_encoder=text,
        tokenizer=tokenizer,
        unet=gb.build_module(lambda: UNet2DConditionModel(**unet_cfg), prof, prof.dtype),
        scheduler=PNDMScheduler(**gb.PNDM_SD),  # as shipped with both GLIGEN checkpoints
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(out)


def build_lama(out: Path, prof: gb.Profile) -> None:
    """big-lama.pt's structure (gpu_bench.LamaLike), scripted, fp32 like the real file."""
    net = gb.build_module(
        lambda: gb.LamaLike(**prof.cfg(gb.LAMA_BIG, gb.LAMA_SMOKE)), prof, torch.float32
    )
    scripted = torch.jit.script(net.cpu())
    scripted.save(str(out / "big-lama.pt"))  # type: ignore[no-untyped-call]


BUILDERS: dict[str, Callable[[Path, gb.Profile], None]] = {
    "llava": build_llava,
    "sam": build_sam,
    "gdino": build_gdino,
    "gligen-generation": lambda out, prof: _build_gligen(out, prof, 4),
    "gligen-inpainting": lambda out, prof: _build_gligen(out, prof, 9),
    "lama": build_lama,
}


def model_path(root: Path, name: str) -> Path:
    """What a worker setting points at: the folder, or LaMa's TorchScript file."""
    return root / name / "big-lama.pt" if name == "lama" else root / name


def worker_env(root: Path) -> dict[str, str]:
    """The worker settings that load every model of ``root`` (with the gpu profile's backends)."""
    p = {name: str(model_path(root, name)) for name in MODELS}
    return {
        "LLAVA_BACKEND": "transformers",
        "LLAVA_MODEL": p["llava"],
        "SEEM_BACKEND": "sam",
        "SEEM_MODEL": p["sam"],
        "SEEM_DETECTOR": p["gdino"],
        "GLIGEN_BACKEND": "diffusers",
        "GLIGEN_MODEL": p["gligen-generation"],
        "GLIGEN_INPAINT_MODEL": p["gligen-inpainting"],
        "INPAINT_BACKEND": "lama",
        "INPAINT_MODEL": p["lama"],
    }


def build_all(
    root: Path,
    *,
    smoke: bool = False,
    device: str = "cpu",
    only: tuple[str, ...] = MODELS,
    log: Callable[[str], None] = lambda m: None,
) -> dict[str, float]:
    """Build every model of ``only`` into ``root/<name>`` (skipping finished ones); returns
    seconds per built model. A build interrupted half-way is redone."""
    prof = _profile(smoke, device)
    root.mkdir(parents=True, exist_ok=True)
    took: dict[str, float] = {}
    for name in only:
        folder = root / name
        marker = folder / DONE
        if marker.exists() and json.loads(marker.read_text()).get("smoke") == smoke:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        torch.manual_seed(0)
        BUILDERS[name](folder, prof)
        gc.collect()
        if prof.device.type == "cuda":
            torch.cuda.empty_cache()
        took[name] = round(time.perf_counter() - t0, 2)
        marker.write_text(json.dumps({"smoke": smoke, "seconds": took[name]}))
        log(f"built {name} in {took[name]:.1f}s -> {folder}")
    return took


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--smoke", action="store_true", help="scaled-down configs (CPU, seconds)")
    ap.add_argument("--only", default=",".join(MODELS))
    ap.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu", help="build on"
    )
    args = ap.parse_args(argv)
    only = tuple(m for m in args.only.split(",") if m)
    unknown = set(only) - set(MODELS)
    if unknown:
        ap.error(f"unknown models: {sorted(unknown)}")
    build_all(args.out, smoke=args.smoke, device=args.device, only=only, log=gb.log)
    for key, value in worker_env(args.out).items():
        print(f"{key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
