"""Tiny LLaVA models for the llava worker (``tiny:llava``, ``tiny:llava-next``).

Random weights, a byte-level BPE tokenizer trained in-process and the real chat templates,
saved with ``save_pretrained`` so the worker loads them like the real checkpoints. Looked up
through :mod:`lvi.registry`; built by :func:`lvi.tiny.ensure`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
