#!/usr/bin/env python
"""GPU benchmark without weights: every worker's model at full size, random weights, one GPU.

Builds the published architectures from their configurations written out below (nothing is
downloaded): LLaVA-1.5-7B, SAM ViT-H, Grounding DINO (Swin-T), the two GLIGEN SD-1.4 UNets
(generation, 4 input channels; inpainting, 9) with the SD VAE and the CLIP ViT-L/14 text
encoder, and a LaMa-sized fast-Fourier-convolution network (see ``LamaLike``). Random weights
give meaningless outputs but the same shapes, kernels and memory as the real checkpoints, so
latency and memory are the real ones.

Measured, each worker alone (model freed between workers):

- llava: time to first token (one 336x336 image = 576 image tokens + ~55 text tokens) and
  decode tokens/s over 128 greedy tokens (EOS suppressed with ``min_new_tokens``), through
  ``generate`` with a streamer, as the worker streams;
- seem/SAM: seconds per click at 512x512 (1024 model input), full forward vs. cached image
  embedding (``get_image_embeddings`` once, then prompt encoder + mask decoder per click),
  including the mask upsampling back to the image size and the copy to the host;
- seem/Grounding DINO: one text + image forward at 800x800 (what the processor makes of 512);
- gligen: seconds per 512x512 image at 50 and 25 steps, generation and grounded inpainting,
  through the real diffusers ``StableDiffusionGLIGENPipeline`` (DPM-Solver++, CFG 7.5, 2 boxes);
- inpaint: one 512x512 fill by the TorchScript LaMa-sized network (fp32, as big-lama.pt);
- the peak GPU memory of each, and of the whole stack resident in one process.

Usage::

    python bench/gpu_bench.py [--out bench/results/gpu.json] [--only llava,sam,...] [--smoke]

``--smoke`` runs the same code with scaled-down configurations on the CPU in seconds (what the
test suite runs). Progress goes to stderr with timestamps; the JSON is rewritten after every
section, so a partial run is still informative; a markdown table is printed last.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Nothing here may touch the network; set before transformers/diffusers are imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
from torch import nn

GIB = 1024**3
SECTIONS = ("sam", "gdino", "lama", "llava", "gligen", "stack")
WORKERS = ("sam", "gdino", "lama", "llava", "gligen")

# --------------------------------------------------------------------------------------------
# Published configurations (full) and their scaled-down twins (--smoke).
# --------------------------------------------------------------------------------------------

# llava-hf/llava-1.5-7b-hf: CLIP ViT-L/14-336 + Vicuna-7B (Llama-2 7B shape), MLP projector.
LLAVA_15_7B: dict[str, Any] = {
    "vision_config": {
        "model_type": "clip_vision_model",
        "hidden_size": 1024,
        "intermediate_size": 4096,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "image_size": 336,
        "patch_size": 14,
        "projection_dim": 768,
        "hidden_act": "quick_gelu",
        "layer_norm_eps": 1e-5,
    },
    "text_config": {
        "model_type": "llama",
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "vocab_size": 32064,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5,
        "hidden_act": "silu",
        "pad_token_id": 32001,
        "bos_token_id": 1,
        "eos_token_id": 2,
    },
    "image_token_index": 32000,
    "image_seq_length": 576,
    "projector_hidden_act": "gelu",
    "vision_feature_layer": -2,
    "vision_feature_select_strategy": "default",
}
LLAVA_SMOKE: dict[str, Any] = {
    **LLAVA_15_7B,
    "vision_config": {
        **LLAVA_15_7B["vision_config"],
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": 28,
        "projection_dim": 32,
    },
    "text_config": {
        **LLAVA_15_7B["text_config"],
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "max_position_embeddings": 512,
    },
    "image_seq_length": 4,
}

# facebook/sam-vit-huge.
SAM_VIT_H: dict[str, Any] = {
    "vision_config": {
        "hidden_size": 1280,
        "num_hidden_layers": 32,
        "num_attention_heads": 16,
        "global_attn_indexes": [7, 15, 23, 31],
        "image_size": 1024,
        "patch_size": 16,
        "output_channels": 256,
        "window_size": 14,
        "mlp_dim": 5120,
        "num_pos_feats": 128,
        "qkv_bias": True,
        "use_abs_pos": True,
        "use_rel_pos": True,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-6,
    },
    "prompt_encoder_config": {
        "hidden_size": 256,
        "image_size": 1024,
        "patch_size": 16,
        "mask_input_channels": 16,
        "num_point_embeddings": 4,
    },
    "mask_decoder_config": {
        "hidden_size": 256,
        "mlp_dim": 2048,
        "num_hidden_layers": 2,
        "num_attention_heads": 8,
        "attention_downsample_rate": 2,
        "num_multimask_outputs": 3,
        "iou_head_depth": 3,
        "iou_head_hidden_dim": 256,
    },
}
SAM_SMOKE: dict[str, Any] = {
    "vision_config": {
        **SAM_VIT_H["vision_config"],
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "global_attn_indexes": [1],
        "image_size": 64,
        "output_channels": 32,
        "window_size": 2,
        "mlp_dim": 64,
        "num_pos_feats": 16,
    },
    "prompt_encoder_config": {
        **SAM_VIT_H["prompt_encoder_config"],
        "hidden_size": 32,
        "image_size": 64,
    },
    "mask_decoder_config": {
        **SAM_VIT_H["mask_decoder_config"],
        "hidden_size": 32,
        "mlp_dim": 64,
        "num_attention_heads": 2,
        "iou_head_hidden_dim": 32,
    },
}

# IDEA-Research/grounding-dino-tiny: Swin-T backbone, BERT-base text encoder, 900 queries.
GDINO_TINY: dict[str, Any] = {
    "backbone_config": {
        "model_type": "swin",
        "embed_dim": 96,
        "depths": [2, 2, 6, 2],
        "num_heads": [3, 6, 12, 24],
        "window_size": 7,
        "image_size": 224,
        "mlp_ratio": 4.0,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-5,
        "out_features": ["stage2", "stage3", "stage4"],
        "out_indices": [2, 3, 4],
    },
    "text_config": {
        "model_type": "bert",
        "vocab_size": 30522,
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
    },
    "d_model": 256,
    "num_queries": 900,
    "encoder_layers": 6,
    "decoder_layers": 6,
    "encoder_attention_heads": 8,
    "decoder_attention_heads": 8,
    "encoder_ffn_dim": 2048,
    "decoder_ffn_dim": 2048,
    "encoder_n_points": 4,
    "decoder_n_points": 4,
    "num_feature_levels": 4,
    "max_text_len": 256,
    "two_stage": True,
    "activation_function": "relu",
    "positional_embedding_temperature": 20,
    "decoder_bbox_embed_share": True,
    "two_stage_bbox_embed_share": False,
    "embedding_init_target": True,
    "query_dim": 4,
    "layer_norm_eps": 1e-5,
}
GDINO_SMOKE: dict[str, Any] = {
    **GDINO_TINY,
    "backbone_config": {
        **GDINO_TINY["backbone_config"],
        "embed_dim": 8,
        "depths": [1, 1, 1, 1],
        "num_heads": [1, 1, 2, 2],
        "image_size": 64,
    },
    "text_config": {
        **GDINO_TINY["text_config"],
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "max_position_embeddings": 64,
    },
    "d_model": 32,
    "num_queries": 16,
    "encoder_layers": 1,
    "decoder_layers": 2,  # the box heads of decoder layers 1.. are tied to layer 0's
    "encoder_attention_heads": 2,
    "decoder_attention_heads": 2,
    "encoder_ffn_dim": 32,
    "decoder_ffn_dim": 32,
    "max_text_len": 32,
}

# gligen/gligen-generation-text-box (SD-1.4 UNet + gated self-attention); the inpainting
# checkpoint is the same with 9 input channels (latent 4 + masked latent 4 + mask 1).
GLIGEN_UNET: dict[str, Any] = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
    "attention_type": "gated",
    "norm_num_groups": 32,
    "act_fn": "silu",
}
SD_VAE: dict[str, Any] = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 512,
}
CLIP_L14_TEXT: dict[str, Any] = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "vocab_size": 49408,
    "max_position_embeddings": 77,
    "projection_dim": 768,
    "hidden_act": "quick_gelu",
    "bos_token_id": 49406,
    "eos_token_id": 49407,
    "pad_token_id": 1,
}
GLIGEN_UNET_SMOKE: dict[str, Any] = {
    **GLIGEN_UNET,
    "sample_size": 16,
    "layers_per_block": 1,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
    "block_out_channels": [32, 64],
    "cross_attention_dim": 32,
}
SD_VAE_SMOKE: dict[str, Any] = {
    **SD_VAE,
    "down_block_types": ["DownEncoderBlock2D"] * 3,
    "up_block_types": ["UpDecoderBlock2D"] * 3,
    "block_out_channels": [32, 32, 64],
    "layers_per_block": 1,
    "sample_size": 64,
}
CLIP_TEXT_SMOKE: dict[str, Any] = {
    **CLIP_L14_TEXT,
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "vocab_size": 1000,
    "projection_dim": 32,
    "bos_token_id": 0,
    "eos_token_id": 1,
}
# SD-1.4's scheduler config (PNDM, as shipped with both GLIGEN checkpoints); the gligen worker
# builds its default sampler, DPM-Solver++ 2M, from it. Every sampler costs one UNet call (two
# images with classifier-free guidance) per step, so s/image depends on the steps, not on it.
PNDM_SD: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "skip_prk_steps": True,
    "set_alpha_to_one": False,
    "steps_offset": 1,
}

# big-lama: FFC ResNet generator, 3 downsamplings to 512 channels, 18 FFC blocks with 3/4 of
# the channels in the spectral (global) branch; about 51M parameters.
LAMA_BIG: dict[str, Any] = {"base": 64, "downs": 3, "blocks": 18, "ratio_g": 0.75}
LAMA_SMOKE: dict[str, Any] = {"base": 8, "downs": 3, "blocks": 2, "ratio_g": 0.75}


# --------------------------------------------------------------------------------------------
# Run profile, timing and memory helpers.
# --------------------------------------------------------------------------------------------


@dataclass
class Profile:
    """What one run builds and how hard it measures (full on a GPU, or --smoke on the CPU)."""

    smoke: bool
    device: torch.device
    dtype: torch.dtype
    reps: int
    deadline: float  # time.monotonic() after which no new section or repetition starts
    image: int = 512  # the user's image side
    gdino_side: int = 800  # GroundingDinoProcessor: shortest edge 800
    llava_prefix_tokens: int = 5  # "USER: " before the image
    llava_text_tokens: int = 50  # the question after it
    llava_new_tokens: int = 128
    gligen_steps: tuple[int, ...] = (50, 25)
    stack_steps: int = 5
    stack_tokens: int = 16

    def cfg(self, full: dict[str, Any], smoke: dict[str, Any]) -> dict[str, Any]:
        return json.loads(json.dumps(smoke if self.smoke else full))


_T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def is_cuda(device: torch.device) -> bool:
    return device.type == "cuda"


def sync(device: torch.device) -> None:
    if is_cuda(device):
        torch.cuda.synchronize(device)


def gib(n: float) -> float:
    return round(n / GIB, 3)


def free_memory(device: torch.device) -> None:
    gc.collect()
    if is_cuda(device):
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()


def mem_now(device: torch.device) -> dict[str, float] | None:
    if not is_cuda(device):
        return None
    free, total = torch.cuda.mem_get_info(device)
    return {
        "allocated_gib": gib(torch.cuda.memory_allocated(device)),
        "reserved_gib": gib(torch.cuda.memory_reserved(device)),
        "device_used_gib": gib(total - free),  # what nvidia-smi shows, all processes, context
    }


def reset_peak(device: torch.device) -> None:
    if is_cuda(device):
        torch.cuda.reset_peak_memory_stats(device)


def peak(device: torch.device) -> dict[str, float | None]:
    if not is_cuda(device):
        return {"peak_alloc_gib": None, "peak_reserved_gib": None}
    return {
        "peak_alloc_gib": gib(torch.cuda.max_memory_allocated(device)),
        "peak_reserved_gib": gib(torch.cuda.max_memory_reserved(device)),
    }


def timed(fn: Callable[[], Any], device: torch.device) -> float:
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t


def repeat(fn: Callable[[], Any], prof: Profile, reps: int | None = None) -> dict[str, Any]:
    """Median of up to ``reps`` timed runs (at least one; fewer when the deadline is near)."""
    runs: list[float] = []
    for _ in range(reps or prof.reps):
        runs.append(timed(fn, prof.device))
        if time.monotonic() > prof.deadline:
            break
    return summary(runs)


def summary(runs: list[float]) -> dict[str, Any]:
    return {
        "median": round(statistics.median(runs), 5),
        "min": round(min(runs), 5),
        "max": round(max(runs), 5),
        "runs": [round(r, 5) for r in runs],
    }


def n_params(*modules: nn.Module) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def build_hf(cls: Any, config: Any, prof: Profile, dtype: torch.dtype) -> Any:
    """A transformers model with random weights, built directly on the device in ``dtype``."""
    with torch.device(prof.device):
        try:
            model = cls._from_config(config, dtype=dtype)
        except TypeError:  # transformers 4.x spells it torch_dtype
            model = cls._from_config(config, torch_dtype=dtype)
    # No dtype in .to(): buffers transformers keeps in fp32 (rotary frequencies) stay so.
    return model.to(prof.device).eval()


def build_module(factory: Callable[[], nn.Module], prof: Profile, dtype: torch.dtype) -> Any:
    """A plain (diffusers / torch) module built on the device, then cast."""
    with torch.device(prof.device):
        module = factory()
    return module.to(device=prof.device, dtype=dtype).eval()


# --------------------------------------------------------------------------------------------
# Workers: build() the models, run_once() one typical request, measure() the latencies.
# --------------------------------------------------------------------------------------------


class Bench:
    """One worker's models; subclasses fill in build, run_once and measure."""

    name = ""
    default_dtype: torch.dtype | None = None  # None: the run's dtype (fp16 unless --dtype)

    def __init__(self, prof: Profile, dtype: torch.dtype | None = None) -> None:
        self.prof = prof
        self.dtype = dtype or self.default_dtype or prof.dtype
        self.gen = torch.Generator(device="cpu").manual_seed(0)

    def modules(self) -> list[nn.Module]:
        raise NotImplementedError

    def build(self) -> None:
        raise NotImplementedError

    def run_once(self) -> None:
        raise NotImplementedError

    def measure(self) -> dict[str, Any]:
        raise NotImplementedError

    def rand(self, *shape: int, dtype: torch.dtype | None = None) -> torch.Tensor:
        t = torch.randn(*shape, generator=self.gen)
        return t.to(device=self.prof.device, dtype=dtype or self.dtype)

    def randint(self, low: int, high: int, n: int) -> list[int]:
        return torch.randint(low, high, (n,), generator=self.gen).tolist()


class LlavaBench(Bench):
    """LLaVA-1.5-7B: prefill with one image, then greedy decode, timed by a streamer."""

    name = "llava"

    def build(self) -> None:
        from transformers import LlavaConfig, LlavaForConditionalGeneration

        cfg = LlavaConfig(**self.prof.cfg(LLAVA_15_7B, LLAVA_SMOKE))
        self.cfg = cfg
        self.model = build_hf(LlavaForConditionalGeneration, cfg, self.prof, self.dtype)
        p = self.prof
        ids = (
            [cfg.text_config.bos_token_id]
            + self.randint(3, 32000, p.llava_prefix_tokens)
            + [cfg.image_token_index] * cfg.image_seq_length
            + self.randint(3, 32000, p.llava_text_tokens)
        )
        self.input_ids = torch.tensor([ids], device=p.device)
        side = cfg.vision_config.image_size
        self.pixel_values = self.rand(1, 3, side, side)

    def modules(self) -> list[nn.Module]:
        return [self.model]

    def generate(self, n: int, streamer: Any = None) -> torch.Tensor:
        with torch.inference_mode():
            return self.model.generate(
                input_ids=self.input_ids,
                attention_mask=torch.ones_like(self.input_ids),
                pixel_values=self.pixel_values,
                max_new_tokens=n,
                min_new_tokens=n,  # a random model may emit EOS at any step
                do_sample=False,
                pad_token_id=self.cfg.text_config.pad_token_id,
                eos_token_id=self.cfg.text_config.eos_token_id,
                streamer=streamer,
            )

    def run_once(self) -> None:
        self.generate(self.prof.stack_tokens)

    def measure(self) -> dict[str, Any]:
        p = self.prof
        self.generate(4)  # warm-up
        ttft: list[float] = []
        tps: list[float] = []
        e2e: list[float] = []
        generated = 0
        for _ in range(p.reps):
            clock = TokenClock()
            sync(p.device)
            t0 = time.perf_counter()
            out = self.generate(p.llava_new_tokens, streamer=clock)
            sync(p.device)
            e2e.append(time.perf_counter() - t0)
            generated = int(out.shape[1] - self.input_ids.shape[1])
            tokens = clock.times[-generated:]
            ttft.append(tokens[0] - t0)
            tps.append((len(tokens) - 1) / max(tokens[-1] - tokens[0], 1e-9))
            if time.monotonic() > p.deadline:
                break
        return {
            "prompt_tokens": int(self.input_ids.shape[1]),
            "image_tokens": int(self.cfg.image_seq_length),
            "new_tokens": generated,
            "ttft_s": summary(ttft),
            "decode_tok_per_s": summary(tps),
            "e2e_s": summary(e2e),
            "summary": [
                ("TTFT, 1 image + text", f"{statistics.median(ttft):.3f} s"),
                (f"decode, {generated} tokens", f"{statistics.median(tps):.1f} tok/s"),
            ],
        }


try:  # generate() wants a BaseStreamer; a missing transformers only fails the llava section
    from transformers.generation.streamers import BaseStreamer as _StreamerBase
except Exception:
    _StreamerBase = object  # type: ignore[assignment,misc]


class TokenClock(_StreamerBase):  # type: ignore[misc,valid-type]
    """A generate() streamer that only records when each token reached the host."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def put(self, value: Any) -> None:
        if isinstance(value, torch.Tensor):
            value.cpu()  # the worker's text streamer copies each token to the host too
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass


class SamBench(Bench):
    """SAM ViT-H: a click with the full forward vs. with the image embedding cached."""

    name = "sam"

    def build(self) -> None:
        from transformers import SamConfig, SamModel

        cfg = SamConfig(**self.prof.cfg(SAM_VIT_H, SAM_SMOKE))
        self.model = build_hf(SamModel, cfg, self.prof, self.dtype)
        self.side = cfg.vision_config.image_size  # the 512 image is resized to 1024, padded
        self.pixel_values = self.rand(1, 3, self.side, self.side)

    def modules(self) -> list[nn.Module]:
        return [self.model]

    def _prompt(self) -> dict[str, torch.Tensor]:
        xy = torch.rand(1, 1, 1, 2, generator=self.gen) * self.side
        return {
            "input_points": xy.to(self.prof.device, self.dtype),
            "input_labels": torch.ones(1, 1, 1, dtype=torch.long, device=self.prof.device),
        }

    def _masks_to_host(self, pred_masks: torch.Tensor) -> Any:
        # SamProcessor.post_process_masks: upscale to the model input, crop the padding,
        # resize to the original image, threshold; then the worker encodes it on the host.
        import torch.nn.functional as F

        m = pred_masks[0].float()
        m = F.interpolate(m, (self.side, self.side), mode="bilinear", align_corners=False)
        m = F.interpolate(m, (self.prof.image, self.prof.image), mode="bilinear")
        return (m > 0).cpu().numpy()

    def click_full(self) -> None:
        with torch.inference_mode():
            out = self.model(
                pixel_values=self.pixel_values, multimask_output=True, **self._prompt()
            )
        self._masks_to_host(out.pred_masks)

    def embed(self) -> None:
        with torch.inference_mode():
            self.embedding = self.model.get_image_embeddings(self.pixel_values)

    def click_cached(self) -> None:
        with torch.inference_mode():
            out = self.model(
                image_embeddings=self.embedding, multimask_output=True, **self._prompt()
            )
        self._masks_to_host(out.pred_masks)

    def run_once(self) -> None:
        self.click_full()

    def measure(self) -> dict[str, Any]:
        self.click_full()
        self.embed()
        self.click_cached()
        full = repeat(self.click_full, self.prof)
        embed = repeat(self.embed, self.prof)
        cached = repeat(self.click_cached, self.prof, max(self.prof.reps, 5))
        return {
            "model_input": self.side,
            "click_full_s": full,
            "image_embedding_s": embed,
            "click_cached_s": cached,
            "summary": [
                ("click, full forward", f"{full['median']:.4f} s"),
                ("click, cached embedding", f"{cached['median']:.4f} s"),
                ("image embedding alone", f"{embed['median']:.4f} s"),
            ],
        }


class GdinoBench(Bench):
    """Grounding DINO (Swin-T): one image + referring-text forward, as seem runs for text."""

    name = "gdino"

    def build(self) -> None:
        from transformers import GroundingDinoConfig, GroundingDinoForObjectDetection

        cfg = GroundingDinoConfig(**self.prof.cfg(GDINO_TINY, GDINO_SMOKE))
        self.model = build_hf(GroundingDinoForObjectDetection, cfg, self.prof, self.dtype)
        side = self.prof.gdino_side
        self.pixel_values = self.rand(1, 3, side, side)
        dev = self.prof.device
        self.pixel_mask = torch.ones(1, side, side, dtype=torch.long, device=dev)
        # "[CLS] a cat . a red remote control . [SEP]": ids 101/102/1012 are hard-coded in the
        # model's phrase masking, so the separators must be the real ones.
        words = [self.randint(1030, 30000, 2), self.randint(1030, 30000, 4)]
        ids = [101] + words[0] + [1012] + words[1] + [1012] + [102]
        self.input_ids = torch.tensor([ids], device=dev)

    def modules(self) -> list[nn.Module]:
        return [self.model]

    def run_once(self) -> None:
        with torch.inference_mode():
            out = self.model(
                pixel_values=self.pixel_values,
                pixel_mask=self.pixel_mask,
                input_ids=self.input_ids,
                attention_mask=torch.ones_like(self.input_ids),
                token_type_ids=torch.zeros_like(self.input_ids),
            )
            # post_process_grounded_object_detection: sigmoid, max over text, top boxes
            scores = out.logits.float().sigmoid().amax(-1)
            keep = scores[0].topk(min(10, scores.shape[1])).indices
            out.pred_boxes[0, keep].float().cpu()

    def measure(self) -> dict[str, Any]:
        self.run_once()
        fwd = repeat(self.run_once, self.prof)
        side = self.prof.gdino_side
        return {
            "image_side": side,
            "text_tokens": int(self.input_ids.shape[1]),
            "forward_s": fwd,
            "summary": [(f"text+image forward {side}x{side}", f"{fwd['median']:.4f} s")],
        }


def tiny_clip_tokenizer() -> Any:
    """A CLIP BPE tokenizer built in-process (letters only): the pipeline pads to 77 anyway."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "abcdefghijklmnopqrstuvwxyz":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


class GligenBench(Bench):
    """The two GLIGEN pipelines (generation, grounded inpainting) sharing VAE + text encoder."""

    name = "gligen"

    def build(self) -> None:
        from diffusers import (
            AutoencoderKL,
            DPMSolverMultistepScheduler,
            PNDMScheduler,
            StableDiffusionGLIGENPipeline,
            UNet2DConditionModel,
        )
        from transformers import CLIPTextConfig, CLIPTextModel

        p = self.prof
        unet_cfg = p.cfg(GLIGEN_UNET, GLIGEN_UNET_SMOKE)
        vae_cfg = p.cfg(SD_VAE, SD_VAE_SMOKE)
        text_cfg = CLIPTextConfig(**p.cfg(CLIP_L14_TEXT, CLIP_TEXT_SMOKE))
        vae = build_module(lambda: AutoencoderKL(**vae_cfg), p, self.dtype)
        text = build_hf(CLIPTextModel, text_cfg, p, self.dtype)
        unet_gen = build_module(lambda: UNet2DConditionModel(**unet_cfg), p, self.dtype)
        unet_inp = build_module(
            lambda: UNet2DConditionModel(**{**unet_cfg, "in_channels": 9}), p, self.dtype
        )
        tok = tiny_clip_tokenizer()
        self.pipes = {}
        for mode, unet in (("generation", unet_gen), ("inpainting", unet_inp)):
            pipe = StableDiffusionGLIGENPipeline(
                vae=vae,
                text_encoder=text,
                tokenizer=tok,
                unet=unet,
                # The gligen worker's default sampler, built from the checkpoint's config.
                scheduler=DPMSolverMultistepScheduler.from_config(PNDMScheduler(**PNDM_SD).config),
                safety_checker=None,
                feature_extractor=None,
                requires_safety_checker=False,
            )
            pipe.set_progress_bar_config(disable=True)
            self.pipes[mode] = pipe
        self.side = vae_cfg["sample_size"]
        import numpy as np
        from PIL import Image

        rng = np.random.default_rng(0)
        pixels = rng.integers(0, 256, (self.side, self.side, 3), dtype=np.uint8)
        self.inpaint_image = Image.fromarray(pixels)
        self._modules = [vae, text, unet_gen, unet_inp]

    def modules(self) -> list[nn.Module]:
        return self._modules

    def image(self, mode: str, steps: int) -> Any:
        def progress(step: int, t: Any, latents: Any) -> None:  # the worker streams progress
            pass

        kwargs: dict[str, Any] = {}
        if mode == "inpainting":
            kwargs["gligen_inpaint_image"] = self.inpaint_image
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # random weights: NaN -> uint8 cast warnings
            return self.pipes[mode](
                prompt="a photo of a cat and a dog on a sofa",
                gligen_phrases=["a cat", "a dog"],
                gligen_boxes=[[0.1, 0.4, 0.45, 0.9], [0.55, 0.3, 0.95, 0.9]],
                gligen_scheduled_sampling_beta=0.3,
                height=self.side,
                width=self.side,
                num_inference_steps=steps,
                guidance_scale=7.5,
                generator=torch.Generator(device=self.prof.device).manual_seed(0),
                output_type="pil",
                callback=progress,
                callback_steps=1,
                **kwargs,
            ).images[0]

    def run_once(self) -> None:
        for mode in self.pipes:
            self.image(mode, self.prof.stack_steps)

    def measure(self) -> dict[str, Any]:
        p = self.prof
        res: dict[str, Any] = {"image_side": self.side, "boxes": 2, "scheduler": "DPM-Solver++ 2M"}
        rows = []
        for mode in self.pipes:
            self.image(mode, min(p.gligen_steps))  # warm-up
            for steps in p.gligen_steps:
                r = repeat(lambda m=mode, s=steps: self.image(m, s), p)
                res[f"{mode}_{steps}_steps_s"] = r
                rows.append((f"{mode}, {steps} steps", f"{r['median']:.2f} s/image"))
        res["summary"] = rows
        return res


class LamaLike(nn.Module):
    """A LaMa-sized fast-Fourier-convolution generator (big-lama's structure, random weights).

    big-lama.pt is LaMa's FFCResNetGenerator: reflect-pad + 7x7 conv to 64 channels, three
    stride-2 3x3 convs to 512 channels, 18 FFC residual blocks, three transposed convs back,
    a 7x7 conv to RGB and a sigmoid. Each FFC splits channels into a local part (3x3 convs)
    and a global part (3/4 of them: a spectral transform, 1x1 conv -> FFT -> 1x1 conv on the
    real/imaginary planes -> inverse FFT -> 1x1 conv), with the four local/global cross paths.
    Here the same layers, kernel sizes and channel splits; BatchNorm is kept as eval-mode
    affine ops as in the exported file. Differences (documented in docs/BENCHMARKS.md): the
    downsampling split into local/global happens after the last downsampling conv instead of
    inside it (same parameter count), and no LFU branch (big-lama has it off).
    """

    def __init__(self, base: int = 64, downs: int = 3, blocks: int = 18, ratio_g: float = 0.75):
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(4, base, 7), *_bn_relu(base)]
        ch = base
        for _ in range(downs):
            layers += [nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1), *_bn_relu(ch * 2)]
            ch *= 2
        self.down = nn.Sequential(*layers)
        self.blocks = nn.Sequential(*[FFCBlock(ch, ratio_g) for _ in range(blocks)])
        up: list[nn.Module] = []
        for _ in range(downs):
            up += [
                nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1),
                *_bn_relu(ch // 2),
            ]
            ch //= 2
        up += [nn.ReflectionPad2d(3), nn.Conv2d(ch, 3, 7), nn.Sigmoid()]
        self.up = nn.Sequential(*up)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = torch.cat([image * (1 - mask), mask], dim=1)
        y = self.up(self.blocks(self.down(x)))
        return image * (1 - mask) + y * mask


def _bn_relu(ch: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(ch), nn.ReLU(inplace=True)]


class FourierUnit(nn.Module):
    """1x1 conv + BN + ReLU in the frequency domain (real and imaginary stacked as channels)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch * 2, ch * 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(ch * 2)
        self.ch = ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        f = torch.fft.rfftn(x.float(), dim=(-2, -1), norm="ortho")
        f = torch.cat([f.real, f.imag], dim=1).to(x.dtype)
        f = torch.relu(self.bn(self.conv(f))).float()
        f = torch.complex(f[:, : self.ch], f[:, self.ch :])
        return torch.fft.irfftn(f, s=(h, w), dim=(-2, -1), norm="ortho").to(x.dtype)


class SpectralTransform(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        mid = cout // 2
        self.conv1 = nn.Sequential(nn.Conv2d(cin, mid, 1, bias=False), *_bn_relu(mid))
        self.fu = FourierUnit(mid)
        self.conv2 = nn.Conv2d(mid, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(x + self.fu(x))


class FFC(nn.Module):
    """One fast Fourier convolution (3x3) with BN + ReLU on both branches."""

    def __init__(self, ch: int, ratio_g: float) -> None:
        super().__init__()
        self.cg = int(ch * ratio_g)
        cl = ch - self.cg
        cg = self.cg
        self.l2l = nn.Conv2d(cl, cl, 3, padding=1, padding_mode="reflect", bias=False)
        self.l2g = nn.Conv2d(cl, cg, 3, padding=1, padding_mode="reflect", bias=False)
        self.g2l = nn.Conv2d(cg, cl, 3, padding=1, padding_mode="reflect", bias=False)
        self.g2g = SpectralTransform(cg, cg)
        self.bn_l = nn.Sequential(*_bn_relu(cl))
        self.bn_g = nn.Sequential(*_bn_relu(cg))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        split = x.shape[1] - self.cg
        xl = x[:, :split]
        xg = x[:, split:]
        yl = self.bn_l(self.l2l(xl) + self.g2l(xg))
        yg = self.bn_g(self.l2g(xl) + self.g2g(xg))
        return torch.cat([yl, yg], dim=1)


class FFCBlock(nn.Module):
    def __init__(self, ch: int, ratio_g: float) -> None:
        super().__init__()
        self.conv1 = FFC(ch, ratio_g)
        self.conv2 = FFC(ch, ratio_g)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.conv1(x))


class LamaBench(Bench):
    """The inpaint worker's LaMa path: a TorchScript file loaded with torch.jit.load, fp32."""

    name = "lama"
    default_dtype = torch.float32  # big-lama.pt is fp32 and the worker runs it so

    def build(self) -> None:
        import numpy as np

        p = self.prof
        cfg = p.cfg(LAMA_BIG, LAMA_SMOKE)
        net = build_module(lambda: LamaLike(**cfg), p, self.dtype)
        self.params = n_params(net)
        rng = np.random.default_rng(0)
        side = p.image
        self.host_image = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        self.host_mask = np.zeros((side, side), dtype=np.uint8)
        self.host_mask[side // 4 : side // 2, side // 3 : side * 2 // 3] = 255  # ~8 % of it
        self.net: Any = net
        self.mode = "eager"
        self.jit_errors: dict[str, str] = {}
        for mode in ("script", "trace"):
            try:
                self.net = self._torchscript(net, mode)
                for _ in range(3):  # the profiling executor specialises on the first calls
                    self.run_once()
                self.mode = mode
                break
            except Exception as exc:  # fall back to the next way; record why
                self.net = net
                self.jit_errors[mode] = f"{type(exc).__name__}: {exc}"[:500]
                log(f"lama: torch.jit.{mode} failed ({self.jit_errors[mode][:200]})")

    def _torchscript(self, net: nn.Module, mode: str) -> Any:
        """Export like big-lama.pt, then load the file the way the inpaint worker does."""
        with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
            warnings.simplefilter("ignore")  # torch.jit is deprecated in recent torch
            if mode == "script":
                exported = torch.jit.script(net)
            else:
                image, mask = self._inputs()
                exported = torch.jit.trace(net, (image, mask))
            path = os.path.join(tmp, "lama-like.pt")
            exported.save(path)
            return torch.jit.load(path, map_location=self.prof.device).eval()

    def modules(self) -> list[nn.Module]:
        return [self.net]

    def _inputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        dev = self.prof.device
        image = torch.from_numpy(self.host_image).to(dev).permute(2, 0, 1)[None]
        mask = torch.from_numpy(self.host_mask).to(dev)[None, None]
        return image.to(self.dtype) / 255, (mask > 127).to(self.dtype)

    def run_once(self) -> None:
        # The worker's path: uint8 image and mask from the host, fill, uint8 back on the host.
        with torch.inference_mode():
            out = self.net(*self._inputs())
            (out[0].permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()

    def measure(self) -> dict[str, Any]:
        self.run_once()
        r = repeat(self.run_once, self.prof, max(self.prof.reps, 5))
        side = self.prof.image
        return {
            "image_side": side,
            "torchscript": self.mode,
            "torchscript_errors": self.jit_errors,
            "fill_s": r,
            "summary": [(f"fill {side}x{side} (TorchScript {self.mode})", f"{r['median']:.4f} s")],
        }


BENCHES: dict[str, type[Bench]] = {
    "llava": LlavaBench,
    "sam": SamBench,
    "gdino": GdinoBench,
    "gligen": GligenBench,
    "lama": LamaBench,
}


# --------------------------------------------------------------------------------------------
# Sections.
# --------------------------------------------------------------------------------------------


def worker_section(name: str, prof: Profile, dtype: torch.dtype | None) -> dict[str, Any]:
    """Build one worker alone, measure it, report its weights and peak memory."""
    dev = prof.device
    free_memory(dev)
    before = mem_now(dev)
    reset_peak(dev)
    bench = BENCHES[name](prof, dtype)
    t = time.perf_counter()
    bench.build()
    sync(dev)
    res: dict[str, Any] = {
        "dtype": str(bench.dtype).removeprefix("torch."),
        "params": getattr(bench, "params", None) or n_params(*bench.modules()),
        "build_s": round(time.perf_counter() - t, 2),
        "memory_before": before,
        "memory_after_build": mem_now(dev),
        "build_peak_alloc_gib": peak(dev)["peak_alloc_gib"],
    }
    log(f"{name}: built {res['params'] / 1e6:.1f}M params in {res['build_s']} s; measuring")
    free_memory(dev)
    reset_peak(dev)
    res.update(bench.measure())
    res.update(peak(dev))
    return res


def stack_section(prof: Profile, dtypes: dict[str, torch.dtype], names: list[str]) -> dict:
    """Every worker resident in one process, then one request each; the peak over all."""
    dev = prof.device
    free_memory(dev)
    reset_peak(dev)
    res: dict[str, Any] = {"memory_before": mem_now(dev), "workers": {}}
    benches: list[Bench] = []
    for name in names:
        w: dict[str, Any] = {}
        res["workers"][name] = w
        if time.monotonic() > prof.deadline:
            w["skipped"] = "deadline"
            continue
        try:
            before = torch.cuda.memory_allocated(dev) if is_cuda(dev) else 0
            bench = BENCHES[name](prof, dtypes.get(name))
            bench.build()
            sync(dev)
            w["dtype"] = str(bench.dtype).removeprefix("torch.")
            if is_cuda(dev):
                w["resident_gib"] = gib(torch.cuda.memory_allocated(dev) - before)
            benches.append(bench)
            log(f"stack: {name} resident")
        except Exception as exc:  # record it and go on with the others
            w["error"] = f"{type(exc).__name__}: {exc}"
            log(f"stack: {name} failed to build: {w['error']}")
    free_memory(dev)
    res["memory_all_resident"] = mem_now(dev)
    for bench in benches:
        w = res["workers"][bench.name]
        try:
            reset_peak(dev)
            w["request_s"] = round(timed(bench.run_once, dev), 4)
            w.update(peak(dev))
        except Exception as exc:
            w["error"] = f"{type(exc).__name__}: {exc}"
            log(f"stack: {bench.name} request failed: {w['error']}")
    res["memory_after_requests"] = mem_now(dev)
    peaks = [w.get("peak_alloc_gib") for w in res["workers"].values()]
    known = [p for p in peaks if p is not None]
    res["peak_alloc_gib"] = max(known) if known else None
    res["all_built"] = len(benches) == len(names)
    resident = (res["memory_all_resident"] or {}).get("allocated_gib")
    top = max(
        (w for w in res["workers"].values() if w.get("peak_alloc_gib") is not None),
        key=lambda w: w["peak_alloc_gib"],
        default=None,
    )
    biggest = next((n for n, w in res["workers"].items() if w is top), None)
    res["peak_during"] = biggest
    used = (res["memory_after_requests"] or {}).get("device_used_gib")
    during = f" (during {biggest})" if biggest else ""
    res["summary"] = [
        ("all resident, allocated", f"{resident} GiB" if resident is not None else "n/a (CPU)"),
        (
            f"peak allocated, all resident{during}",
            f"{res['peak_alloc_gib']} GiB" if res["peak_alloc_gib"] is not None else "n/a (CPU)",
        ),
        ("GPU memory in use (as nvidia-smi)", f"{used} GiB" if used is not None else "n/a (CPU)"),
    ]
    failed = [n for n, w in res["workers"].items() if "error" in w or "skipped" in w]
    if failed:
        res["error"] = f"not measured in the stack: {', '.join(failed)}; see workers"
    del benches
    return res


# --------------------------------------------------------------------------------------------
# Reporting.
# --------------------------------------------------------------------------------------------


def environment(prof: Profile) -> dict[str, Any]:
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "profile": "smoke" if prof.smoke else "full",
        "device": str(prof.device),
        "dtype": str(prof.dtype).removeprefix("torch."),
        "reps": prof.reps,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    for mod in ("transformers", "diffusers", "accelerate"):
        try:
            env[mod] = __import__(mod).__version__
        except Exception as exc:
            env[mod] = f"unavailable: {exc}"
    if is_cuda(prof.device):
        props = torch.cuda.get_device_properties(prof.device)
        env.update(
            gpu=props.name,
            gpu_memory_gib=gib(props.total_memory),
            capability=f"{props.major}.{props.minor}",
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            device_used_gib_at_start=(mem_now(prof.device) or {}).get("device_used_gib"),
        )
    else:
        env["cpu_threads"] = torch.get_num_threads()
    return env


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def table(data: dict[str, Any]) -> str:
    meta = data["meta"]
    where = meta.get("gpu") or f"CPU ({meta.get('cpu_threads')} threads)"
    head = f"GPU benchmark ({meta['profile']}), {where}, {meta['dtype']}, torch {meta['torch']}"
    lines = [
        head,
        "",
        "| worker | measurement | median | weights GiB | peak GiB |",
        "|---|---|---|---|---|",
    ]
    for name, sec in data["sections"].items():
        if not sec.get("ok"):
            why = sec.get("skipped") or sec.get("error", "failed")
            lines.append(f"| {name} | not measured | {str(why)[:80]} | | |")
            continue
        weights = (sec.get("memory_after_build") or {}).get("allocated_gib", "")
        pk = sec.get("peak_alloc_gib")
        for i, (label, value) in enumerate(sec.get("summary", [])):
            w = weights if i == 0 else ""
            p = ("" if pk is None else pk) if i == 0 else ""
            lines.append(f"| {name} | {label} | {value} | {w} | {p} |")
    total = time.monotonic() - _T0
    lines += ["", f"total {total:.0f} s; full numbers in {data['meta']['out']}"]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="bench/results/gpu.json", help="JSON file for all numbers")
    ap.add_argument("--only", default="", help=f"comma-separated subset of {','.join(SECTIONS)}")
    ap.add_argument("--smoke", action="store_true", help="scaled-down configs on the CPU")
    ap.add_argument("--reps", type=int, default=None, help="timed runs per measurement (3)")
    ap.add_argument(
        "--dtype",
        choices=["float16", "bfloat16", "float32"],
        help="model dtype (default float16 on the GPU, float32 with --smoke; LaMa stays fp32)",
    )
    ap.add_argument(
        "--deadline", type=float, default=480.0, help="seconds after which no section starts"
    )
    ap.add_argument(
        "--no-fallback", action="store_true", help="do not retry a failed section in float32"
    )
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [s.strip() for s in args.only.split(",") if s.strip()] or list(SECTIONS)
    unknown = sorted(set(names) - set(SECTIONS))
    if unknown:
        print(f"unknown section(s): {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
        return 2
    if not args.smoke and not torch.cuda.is_available():
        print(
            "gpu_bench: no CUDA GPU is visible to torch "
            f"(torch {torch.__version__}, cuda {torch.version.cuda}). This benchmark needs a "
            "CUDA build of torch and one GPU; run with --smoke for the scaled-down CPU check.",
            file=sys.stderr,
        )
        return 3
    with contextlib.suppress(Exception):
        import transformers

        transformers.logging.set_verbosity_error()
    with contextlib.suppress(Exception):
        import diffusers

        diffusers.utils.logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)

    smoke = args.smoke
    prof = Profile(
        smoke=smoke,
        device=torch.device("cpu" if smoke else "cuda"),
        dtype=getattr(torch, args.dtype or ("float32" if smoke else "float16")),
        reps=args.reps or (1 if smoke else 3),
        deadline=_T0 + args.deadline,
    )
    if smoke:
        # One thread: on a shared CPU, OpenMP workers spinning at barriers while another
        # process holds the cores turn 50 ms calls into seconds.
        torch.set_num_threads(1)
        prof.image = 64
        prof.gdino_side = 128  # 64 leaves 1x1 maps at the extra level: GroupNorm refuses
        prof.llava_text_tokens = 8
        prof.llava_new_tokens = 6
        prof.gligen_steps = (3, 2)
        prof.stack_steps = 2
        prof.stack_tokens = 2
    out = Path(args.out)
    torch.manual_seed(0)
    data: dict[str, Any] = {"meta": {**environment(prof), "out": str(out)}, "sections": {}}
    log(f"gpu_bench: {data['meta'].get('gpu', 'cpu')}, sections {','.join(names)}")
    write_json(out, data)

    dtypes: dict[str, torch.dtype] = {}
    for name in names:
        started = time.monotonic()
        if started > prof.deadline:
            data["sections"][name] = {"ok": False, "skipped": "deadline"}
            log(f"{name}: skipped (past the {args.deadline:.0f} s deadline)")
            write_json(out, data)
            continue
        log(f"{name}: start")
        if name == "stack":
            workers = [n for n in WORKERS if n in names] or list(WORKERS)
            res = run_guarded(lambda w=workers: stack_section(prof, dtypes, w))
        else:
            res = run_guarded(lambda n=name: worker_section(n, prof, None))
            fp32_ok = prof.dtype != torch.float32 and BENCHES[name].default_dtype is None
            if (
                not res["ok"]
                and fp32_ok
                and not args.no_fallback
                and "OutOfMemory" not in str(res.get("error"))
            ):
                log(f"{name}: failed in {prof.dtype}; retrying in float32")
                first = res
                res = run_guarded(lambda n=name: worker_section(n, prof, torch.float32))
                res["first_try"] = {k: first[k] for k in ("error", "traceback") if k in first}
            if res["ok"]:
                dtypes[name] = getattr(torch, res["dtype"])
        res["section_s"] = round(time.monotonic() - started, 1)
        data["sections"][name] = res
        write_json(out, data)
        status = "ok" if res["ok"] else f"FAILED: {res.get('error')}"
        log(f"{name}: {status} ({res['section_s']} s)")
        for label, value in res.get("summary", []):
            log(f"{name}:   {label}: {value}")
        if res.get("peak_alloc_gib") is not None:
            log(f"{name}:   peak allocated {res['peak_alloc_gib']} GiB")
    data["meta"]["total_s"] = round(time.monotonic() - _T0, 1)
    write_json(out, data)
    log(f"done; wrote {out}")
    print(table(data), flush=True)
    return 0 if all(s.get("ok") for s in data["sections"].values()) else 1


def run_guarded(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one section; an exception becomes an error record, and the memory is freed."""
    try:
        res = fn()
        res["ok"] = "error" not in res
    except Exception as exc:  # every section is independent
        res = {
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}"[:2000],
            "traceback": traceback.format_exc(limit=12)[-6000:],
        }
    free_memory(torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
    return res


if __name__ == "__main__":
    sys.exit(main())
