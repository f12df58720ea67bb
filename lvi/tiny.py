"""Builders of tiny random-weight models, saved in the same format the real models use.

They let tests and offline machines run every worker through exactly the loading code of
the real checkpoints (``torch.jit.load``, ``from_pretrained``). Outputs are meaningless.
Builds are deterministic (fixed seeds) and atomic (built in a temp folder, then renamed), so
concurrent processes can share one cache folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

Builder = Callable[[Path], Path]
"""Builds a model into an empty folder and returns the path to load (the folder or a file)."""


def build_lama(out: Path) -> Path:
    """A TorchScript module with LaMa's calling convention.

    ``forward(image[B,3,H,W] in 0..1, mask[B,1,H,W] in {0,1}) -> image[B,3,H,W] in 0..1``,
    like ``big-lama.pt``. Two small convolutions with fixed random weights.
    """
    import torch
    from torch import nn

    class TinyLama(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(4, 8, 3, padding=1)
            self.conv2 = nn.Conv2d(8, 3, 3, padding=1)

        def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            x = torch.cat([image * (1 - mask), mask], dim=1)
            y = torch.sigmoid(self.conv2(torch.relu(self.conv1(x))))
            return image * (1 - mask) + y * mask

    torch.manual_seed(0)
    scripted = torch.jit.script(TinyLama().eval())
    path = out / "tiny-lama.pt"
    scripted.save(str(path))  # type: ignore[no-untyped-call]
    return path


_TINY_CORPUS = (
    "USER: What is shown in this image? ASSISTANT: The image shows a red cat sitting on a "
    "blue mat next to a window. SYSTEM: You are a helpful assistant that describes pictures. "
    "[INST] Describe the picture in detail. [/INST] A dog runs across green grass under a "
    "bright sky, while two people watch from a bench. Remove the car; move the tree to the "
    "left; replace the sign with a lamp. 0123456789 , . ; : ! ? ( ) [ ] < > / - _ ' \" "
)

# LLaVA-1.5's prompt format (as in llava-hf/llava-1.5-7b-hf): "USER: <image>\n... ASSISTANT:",
# images of a message first, then its text.
LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}"
    "{% for c in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ c['text'] + '\n' }}{% endfor %}"
    "{% else %}{{ message['role'].upper() + ': ' }}"
    "{% for c in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}"
    "{% for c in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ c['text'] + ' ' }}{% endfor %}"
    "{% if message['role'] == 'assistant' %}{{ '</s>' }}{% endif %}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

# LLaVA-NeXT (Mistral) format: "[INST] <image>\n... [/INST]"; roles must alternate, and the
# template raises otherwise, as the real one does.
LLAVA_NEXT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}"
    "{{ '<<SYS>>\n' + message['content'][0]['text'] + '\n<</SYS>>\n\n' }}"
    "{% elif message['role'] == 'user' %}{{ '[INST] ' }}"
    "{% for c in message['content'] %}"
    "{% if c['type'] == 'image' %}{{ '<image>\n' }}{% else %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{{ ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'][0]['text'] + '</s> ' }}"
    "{% endif %}{% endfor %}"
)


def _tiny_tokenizer(vocab_size: int = 512) -> Any:
    """A byte-level BPE tokenizer trained in-process, with LLaVA's ``<image>`` token.

    Byte-level, so any text (and any random-weight output) round-trips without unknowns.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>", "<image>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([_TINY_CORPUS] * 4, trainer)
    fast: Any = PreTrainedTokenizerFast  # untyped in transformers
    return fast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
        model_max_length=4096,
    )


def _tiny_llava_parts(tokenizer: Any) -> tuple[Any, Any]:
    """CLIP vision and Llama text configs shared by the tiny LLaVA builders."""
    from transformers import CLIPVisionConfig, LlamaConfig

    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
        projection_dim=32,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        # Long enough for the history-truncation and disconnect tests; rope costs nothing
        # until positions are used.
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return vision, text


def _silence_eos(model: Any, eos_id: int) -> None:
    """Zero the EOS row of the LM head: greedy decoding of random weights then never stops
    early, so tests see deterministic lengths (``finish_reason == "length"``)."""
    import torch

    with torch.no_grad():
        model.get_output_embeddings().weight[eos_id].zero_()


def build_llava(out: Path) -> Path:
    """Tiny LLaVA-1.5: CLIP vision tower, projector, Llama; LLaVA-1.5 chat template."""
    import torch
    from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    tokenizer = _tiny_tokenizer()
    vision, text = _tiny_llava_parts(tokenizer)
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=image_token_id,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        image_seq_length=16,
    )
    torch.manual_seed(0)
    model: Any = LlavaForConditionalGeneration(config)
    model.eval()
    _silence_eos(model, tokenizer.eos_token_id)
    processor_cls: Any = LlavaProcessor
    processor = processor_cls(
        image_processor=CLIPImageProcessorPil(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
        ),
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS token, dropped by the "default" strategy
        chat_template=LLAVA_CHAT_TEMPLATE,
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def build_llava_next(out: Path) -> Path:
    """Tiny LLaVA-NeXT: any-resolution tiling over a 32 px CLIP tower; Mistral chat template."""
    import torch
    from transformers import (
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextProcessor,
    )
    from transformers.models.llava_next.image_processing_pil_llava_next import (
        LlavaNextImageProcessorPil,
    )

    tokenizer = _tiny_tokenizer()
    vision, text = _tiny_llava_parts(tokenizer)
    pinpoints = [[32, 64], [64, 32], [64, 64]]
    config = LlavaNextConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_grid_pinpoints=pinpoints,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        image_seq_length=16,
    )
    torch.manual_seed(0)
    model: Any = LlavaNextForConditionalGeneration(config)
    model.eval()
    _silence_eos(model, tokenizer.eos_token_id)
    processor_cls: Any = LlavaNextProcessor
    processor = processor_cls(
        image_processor=LlavaNextImageProcessorPil(
            size={"shortest_edge": 32},
            crop_size={"height": 32, "width": 32},
            image_grid_pinpoints=pinpoints,
        ),
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA_NEXT_CHAT_TEMPLATE,
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


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


BUILDERS: dict[str, Builder] = {
    "sam": build_sam,
    "sam-hq": build_sam_hq,
    "grounding-dino": build_grounding_dino,
    "llava": build_llava,
    "llava-next": build_llava_next,
    "lama": build_lama,
    "gligen-generation": build_gligen_generation,
    "gligen-inpainting": build_gligen_inpainting,
}
"""Name -> builder. ``tiny:<name>`` model references resolve through this table."""


REVISIONS: dict[str, int] = {"gligen-generation": 2, "gligen-inpainting": 2}
"""Builders whose layout changed: revision N builds into ``<name>-vN``, so a cache folder
built by an older revision is never reused (gligen v2: the 8x VAE, native 512)."""


def folder_name(name: str) -> str:
    rev = REVISIONS.get(name, 1)
    return name if rev == 1 else f"{name}-v{rev}"


def _result_path(folder: Path) -> Path:
    marker = folder / ".lvi-tiny-entry"
    return folder / marker.read_text().strip() if marker.exists() else folder


def ensure(name: str, root: Path) -> Path:
    """Return the path of tiny model ``name`` under ``root``, building it if missing."""
    if name not in BUILDERS:
        raise KeyError(f"unknown tiny model '{name}'; known: {', '.join(sorted(BUILDERS))}")
    folder = root / folder_name(name)
    if (folder / ".lvi-tiny-entry").exists():
        return _result_path(folder)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    tmp.chmod(0o755)
    try:
        entry = BUILDERS[name](tmp)
        (tmp / ".lvi-tiny-entry").write_text(str(entry.relative_to(tmp)) if entry != tmp else ".")
        try:
            os.rename(tmp, folder)
        except OSError:
            # Another process finished first; its copy is as good as ours.
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _result_path(folder)


def build_all(root: Path, names: list[str] | None = None) -> dict[str, Path]:
    """Build every tiny model (or ``names``) under ``root``; return name -> path."""
    return {n: ensure(n, root) for n in (names or sorted(BUILDERS))}
