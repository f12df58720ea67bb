"""Tiny SAM, SAM-HQ and Grounding DINO for the seem worker (``tiny:sam``, ``tiny:sam-hq``,
``tiny:grounding-dino``). Looked up through :mod:`lvi.registry`; built by
:func:`lvi.tiny.ensure`."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _build_sam(out: Path, *, hq: bool) -> Path:
    import torch
    from transformers import (
        SamConfig,
        SamHQConfig,
        SamHQModel,
        SamHQProcessor,
        SamModel,
        SamProcessor,
    )
    from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil

    # SAM's constraints: vision output_channels == prompt hidden == decoder hidden;
    # num_pos_feats == output_channels // 2; global_attn_indexes < num_hidden_layers;
    # image_size equals the pad size. Low-res masks are 4 x (image_size / patch_size).
    side, patch, ch = 64, 4, 32
    vision = {
        "hidden_size": 32,
        "output_channels": ch,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": side,
        "patch_size": patch,
        "window_size": 4,
        "global_attn_indexes": [1],
        "num_pos_feats": ch // 2,
        "mlp_dim": 64,
    }
    prompt = {"hidden_size": ch, "image_size": side, "patch_size": patch, "mask_input_channels": 4}
    decoder = {
        "hidden_size": ch,
        "mlp_dim": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "iou_head_hidden_dim": 32,
    }
    torch.manual_seed(0)
    model: Any
    if hq:
        model = SamHQModel(
            SamHQConfig(
                vision_config=vision,
                prompt_encoder_config=prompt,
                mask_decoder_config={**decoder, "vit_dim": 32},
            )
        )
    else:
        model = SamModel(
            SamConfig(
                vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder
            )
        )
    low = side // patch * 4
    image_processor = SamImageProcessorPil(
        size={"longest_edge": side},
        pad_size={"height": side, "width": side},
        mask_size={"longest_edge": low},
        mask_pad_size={"height": low, "width": low},
    )
    processor = (SamHQProcessor if hq else SamProcessor)(image_processor=image_processor)
    model.eval().save_pretrained(out)
    processor.save_pretrained(out)
    return out


def build_sam(out: Path) -> Path:
    """Tiny SAM (``SamModel`` + ``SamProcessor``): 64-pixel input, 16x16 embedding."""
    return _build_sam(out, hq=False)


def build_sam_hq(out: Path) -> Path:
    """Tiny SAM-HQ (``SamHQModel``): same geometry as :func:`build_sam`, plus the HQ token."""
    return _build_sam(out, hq=True)


def _grounding_vocab() -> dict[str, int]:
    """A BERT vocabulary with Grounding DINO's hard-coded ids where its code expects them:
    101 [CLS], 102 [SEP], 1012 '.', 1029 '?' (and 0 [PAD], 100 [UNK], 103 [MASK]).

    Single letters and their '##' continuations make every lower-case word tokenisable.
    """
    vocab: dict[str, int] = {"[PAD]": 0}
    vocab.update({f"[unused{i}]": i for i in range(1, 100)})
    vocab.update({"[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103})
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    words = ["object", "thing", "cat", "dog", "person", "man", "woman", "car"]
    words += ["tree", "sky", "the", "a", "an", "red", "blue", "green"]
    pieces = letters + [f"##{c}" for c in letters] + list("0123456789,;:!-'") + words
    next_id = 104
    for piece in pieces:
        if piece not in vocab:
            vocab[piece] = next_id
            next_id += 1
    fixed = {1012: ".", 1029: "?"}
    for i in range(next_id, 1030):
        vocab[fixed.get(i, f"[unused{i}]")] = i
    return vocab


def build_grounding_dino(out: Path) -> Path:
    """Tiny Grounding DINO (tiny Swin + tiny BERT) with its processor and BERT tokenizer."""
    import torch
    from transformers import (
        BertConfig,
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoProcessor,
        SwinConfig,
    )
    from transformers.models.grounding_dino.image_processing_pil_grounding_dino import (
        GroundingDinoImageProcessorPil,
    )

    vocab = _grounding_vocab()
    tokenizer = BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=256)
    swin = SwinConfig(  # type: ignore[call-arg]  # out_features is handled by its mixin
        image_size=64,
        patch_size=4,
        embed_dim=8,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 1, 1],
        window_size=4,
        out_features=["stage2", "stage3", "stage4"],
    )
    bert = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=256,
    )
    # d_model must be a multiple of 32 (GroupNorm(32, d_model)); two decoder layers at least
    # (the box heads of layers 1+ are tied to layer 0's).
    config = GroundingDinoConfig(
        backbone_config=swin,
        text_config=bert,
        num_queries=20,
        encoder_layers=1,
        decoder_layers=2,
        d_model=32,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_n_points=2,
        decoder_n_points=2,
        max_text_len=256,
    )
    torch.manual_seed(0)
    model = GroundingDinoForObjectDetection(config).eval()  # type: ignore[no-untyped-call]
    # 128 pixels at least: Swin's stride 32 and one more stride-2 level must leave 2x2 features
    # for GroupNorm (a 64-pixel square image would leave 1x1 and fail).
    image_processor = GroundingDinoImageProcessorPil(
        size={"shortest_edge": 128, "longest_edge": 192}
    )
    processor = GroundingDinoProcessor(  # type: ignore[no-untyped-call]
        image_processor=image_processor, tokenizer=tokenizer
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
