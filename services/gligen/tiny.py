"""Tiny GLIGEN pipelines for the gligen worker (``tiny:gligen-generation``,
``tiny:gligen-inpainting``): gated UNet, tiny VAE and CLIP text encoder, CLIP tokenizer trained
in-process. Looked up through :mod:`lvi.registry`; built by :func:`lvi.tiny.ensure`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_CLIP_PATTERN = (
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|"""
    r"""[^\s\p{L}\p{N}]+"""
)
_GLIGEN_CORPUS = (
    "a photo of a cat sitting on a sofa; a dog; a red car in the street; a hat; a tree; "
    "a teddy bear on a bench in the park, a bird flying over the sea at sunset. "
)


def _tiny_clip_tokenizer() -> Any:
    """A CLIP BPE tokenizer trained in-process (CLIP's normaliser, split pattern and ``</w>``).

    The vocabulary holds every byte symbol, alone and word-final, so any text tokenises
    without unknowns; the special tokens come last, as in the real CLIP vocabulary.
    """
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import CLIPTokenizer

    tok = Tokenizer(models.BPE(end_of_word_suffix="</w>", continuing_subword_prefix=""))
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_CLIP_PATTERN), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        end_of_word_suffix="</w>",
        show_progress=False,
    )
    tok.train_from_iterator([_GLIGEN_CORPUS] * 4, trainer)
    merges: Any = [tuple(m) for m in json.loads(tok.to_str())["model"]["merges"]]
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab: dict[str, int] = {}
    for symbol in [*alphabet, *(a + "</w>" for a in alphabet), *(a + b for a, b in merges)]:
        vocab.setdefault(symbol, len(vocab))
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab.setdefault(special, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


def _build_gligen(out: Path, in_channels: int) -> Path:
    """A StableDiffusionGLIGENPipeline folder: gated UNet, tiny VAE, tiny CLIP text encoder.

    Laid out like SD-1.4, only narrow: native size 512x512 and a VAE that downsamples by 8
    (four blocks) to a 64x64 latent. (A two-block VAE, scale 2, put 512x512 on a 256x256
    latent with attention over 16k tokens: about a minute per step on 2 loaded cores, see
    docs/BENCHMARKS.md.) ``in_channels`` is 4 for generation and 9 for inpainting (latents +
    masked-image latents + mask). The scheduler is PNDM with the SD-1.4 settings, as in the
    real GLIGEN checkpoints; the worker may swap it.
    """
    import importlib

    import torch
    from transformers import CLIPTextConfig, CLIPTextModel

    diffusers: Any = importlib.import_module("diffusers")  # untyped package

    tokenizer = _tiny_clip_tokenizer()
    torch.manual_seed(0)
    unet = diffusers.UNet2DConditionModel(
        # Three levels (64, 32, 16 latent cells), attention only at the last: 256 tokens.
        # With attention at 32x32 a 512x512 step took 5x longer on one core.
        block_out_channels=(16, 32, 32),
        layers_per_block=1,
        norm_num_groups=8,
        attention_head_dim=8,
        sample_size=64,  # latent side: 512 / 8, as SD-1.4
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,  # must equal the text encoder's hidden size
        attention_type="gated",  # GLIGEN's gated self-attention (the grounding "fuser")
    )
    vae = diffusers.AutoencoderKL(
        # Four blocks: 2**3 = 8x down/up-sampling, SD's scale. Narrow, since the first and
        # last blocks run at full resolution.
        block_out_channels=[8, 8, 16, 16],
        layers_per_block=1,
        norm_num_groups=8,
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        latent_channels=4,
        sample_size=512,  # the pipeline resizes an inpainting image to this square
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=37,
            projection_dim=32,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=77,
            layer_norm_eps=1e-5,
        )
    )
    scheduler = diffusers.PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        skip_prk_steps=True,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = diffusers.StableDiffusionGLIGENPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(out)
    return out


def build_gligen_generation(out: Path) -> Path:
    """Tiny GLIGEN text-box generation pipeline (4-channel gated UNet)."""
    return _build_gligen(out, in_channels=4)


def build_gligen_inpainting(out: Path) -> Path:
    """Tiny GLIGEN text-box inpainting pipeline (9-channel gated UNet)."""
    return _build_gligen(out, in_channels=9)
