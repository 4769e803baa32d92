"""Tiny random stand-ins for the two Hugging Face folders the Img2Img-SC link loads, written in
their published layouts: Stable Diffusion 1.5 (``stable-diffusion-v1-5/stable-diffusion-v1-5``,
diffusers layout) and the BLIP captioner (``Salesforce/blip-image-captioning-large``).

Each folder holds exactly the files ``semlink weights DIR --download --sd15 --blip`` fetches
(:func:`semlink.models.downloads.sd15_files`, :data:`semlink.models.downloads.BLIP_FILES`), under
the published names, with models of the published classes a few thousand times smaller
(random weights from ``seed``: the same files on every machine). ``save_pretrained`` in
transformers 5 does not write the published sets: a tokenizer saves ``tokenizer.json`` and
``tokenizer_config.json`` only (CLIP's published folder has ``vocab.json``, ``merges.txt``,
``tokenizer_config.json`` and ``special_tokens_map.json``, no ``tokenizer.json``), and a BLIP
processor and model save ``processor_config.json`` and ``generation_config.json`` but neither
``preprocessor_config.json``, ``special_tokens_map.json`` nor ``vocab.txt``. So the configs and
tokenizer files are written here by hand in the published format (BLIP's ``tokenizer.json`` is
the tokenizers library's, from the ``vocab.txt``), and nothing else is kept: the folders are
what a download gives, and the loaders read them as they would the real ones.

* CLIP's tokenizer: a byte-level BPE vocabulary with no merges (the 256 byte symbols, each
  also with CLIP's ``</w>`` end-of-word suffix, then ``<|startoftext|>`` and
  ``<|endoftext|>``), so every caption tokenizes, one byte per token.
* BLIP's tokenizer: a BERT WordPiece ``vocab.txt`` of ``[PAD]`` (0), ``[UNK]``, ``[CLS]``,
  ``[SEP]``, ``[MASK]``, short English words and the lowercase letters with their ``##``
  continuations; the text model's vocabulary is two ids larger and starts captions with the
  first id past ``vocab.txt`` (as the published ``[DEC]``, 30522, past ``bert-base-uncased``'s
  30522 tokens), which decoding drops. A greedy caption of at most 20 tokens is at most 120
  UTF-8 bytes.
"""
from __future__ import annotations

import json
import math
import shutil
import string
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["CLIP_VOCAB_SIZE", "BLIP_IMAGE_SIZE", "write_tiny_sd15", "write_tiny_blip"]

CLIP_VOCAB_SIZE = 2 * 256 + 2
"""Tokens of the tiny CLIP vocabulary: 256 byte symbols, the same with ``</w>``, start, end."""

BLIP_IMAGE_SIZE = 32
"""Side, px, that the tiny BLIP image processor resizes images to (384 published)."""

#: The published ``model_index.json`` (its folder lists the safety checker and feature
#: extractor, which the img2img-sc link neither needs nor downloads).
_MODEL_INDEX = {
    "_class_name": "StableDiffusionPipeline", "_diffusers_version": "0.6.0",
    "feature_extractor": ["transformers", "CLIPImageProcessor"],
    "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
    "scheduler": ["diffusers", "PNDMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"]}

#: The published ``scheduler/scheduler_config.json``.
_SCHEDULER = {
    "_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "beta_start": 0.00085, "num_train_timesteps": 1000,
    "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1,
    "trained_betas": None, "clip_sample": False}


def _added_token(content: str) -> dict[str, Any]:
    return {"content": content, "lstrip": False, "normalized": True, "rstrip": False,
            "single_word": False}


_START, _END = "<|startoftext|>", "<|endoftext|>"
#: The published ``tokenizer/special_tokens_map.json``.
_CLIP_SPECIAL = {"bos_token": _added_token(_START), "eos_token": _added_token(_END),
                 "pad_token": _END, "unk_token": _added_token(_END)}
#: The published ``tokenizer/tokenizer_config.json`` (less ``name_or_path``).
_CLIP_TOKENIZER_CONFIG = {
    "add_prefix_space": False,
    "bos_token": {"__type": "AddedToken", **_added_token(_START)},
    "do_lower_case": True,
    "eos_token": {"__type": "AddedToken", **_added_token(_END)},
    "errors": "replace", "model_max_length": 77, "pad_token": _END,
    "special_tokens_map_file": "./special_tokens_map.json", "tokenizer_class": "CLIPTokenizer",
    "unk_token": {"__type": "AddedToken", **_added_token(_END)}}

_BERT_SPECIAL = {"cls_token": "[CLS]", "mask_token": "[MASK]", "pad_token": "[PAD]",
                 "sep_token": "[SEP]", "unk_token": "[UNK]"}
#: The published ``tokenizer_config.json`` (less ``name_or_path``).
_BLIP_TOKENIZER_CONFIG = {
    **_BERT_SPECIAL, "do_basic_tokenize": True, "do_lower_case": True,
    "model_max_length": 512, "never_split": None, "processor_class": "BlipProcessor",
    "special_tokens_map_file": None, "strip_accents": None, "tokenize_chinese_chars": True,
    "tokenizer_class": "BertTokenizer"}
#: The published ``preprocessor_config.json``, at :data:`BLIP_IMAGE_SIZE` px (384 published).
_BLIP_IMAGES = {
    "do_normalize": True, "do_resize": True,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_processor_type": "BlipImageProcessor",
    "image_std": [0.26862954, 0.26130258, 0.27577711], "processor_class": "BlipProcessor",
    "resample": 3, "rescale_factor": 0.00392156862745098,
    "size": {"height": BLIP_IMAGE_SIZE, "width": BLIP_IMAGE_SIZE}}
_WORDS = ("a", "an", "the", "of", "on", "in", "with", "and", "is", "at", "cat", "dog", "man",
          "red", "blue", "door", "sofa", "car", "tree", "house", "sky", "sea", "photo")


def _bytes_to_unicode() -> list[str]:
    """CLIP's (and GPT-2's) printable stand-in of each byte 0..255, in byte order."""
    printable = {*range(33, 127), *range(161, 173), *range(174, 256)}  # printable Latin-1
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def _fill(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Random parameters from ``generator`` (torch's global RNG untouched): matrices N(0,
    1 / fan_in), vectors named ``*weight`` 1 (norm scales), other vectors 0 (biases)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=generator) / math.sqrt(p[0].numel()))
            else:
                p.fill_(1.0 if name.endswith("weight") else 0.0)
    return model.eval()


def _json(path: Path, value: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) + "\n")


def _keep_only(folder: Path, names: set[str]) -> None:
    """Check that ``folder`` holds ``names`` and delete anything else in it."""
    present = {p.name for p in folder.iterdir()}
    if not names <= present:
        raise AssertionError(f"{folder}: not written: {sorted(names - present)}")
    for p in folder.iterdir():
        if p.name not in names:
            shutil.rmtree(p) if p.is_dir() else p.unlink()


# ----------------------------------------------------------------------------- SD 1.5


def write_tiny_sd15(folder: Path, *, seed: int = 0, variant: str = "fp16") -> Path:
    """Write a Stable Diffusion 1.5 folder in the published diffusers layout with tiny random
    models of the published classes: :func:`semlink.models.sd15.tiny_sd15`'s UNet and VAE
    (``UNet2DConditionModel``, ``AutoencoderKL``), a one-layer ``CLIPTextModel`` of width 768
    (the UNet's cross-attention width), CLIP's tokenizer files and the published scheduler
    config. Exactly the files of ``sd15_files(variant)``.

    :param folder: Where to write (created; other files in its subfolders are deleted).
    :param seed: int; the weights' seed.
    :param variant: ``"fp16"`` (``*.fp16.safetensors`` in float16, the default download) or
        ``"fp32"`` (``*.safetensors`` in float32).
    :output folder: ``folder``.
    """
    from transformers import CLIPTextConfig, CLIPTextModel

    from semlink.models.downloads import sd15_files
    from semlink.models.sd15 import tiny_sd15

    planned = sd15_files(variant)  # checks the variant
    dtype, suffix = (torch.float16, "fp16") if variant == "fp16" else (torch.float32, None)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _json(folder / "model_index.json", _MODEL_INDEX)
    models = tiny_sd15(seed=seed)
    for part, model in (("unet", models.unet), ("vae", models.vae)):
        model.to(dtype).save_pretrained(folder / part, variant=suffix, safe_serialization=True)
    width = models.unet.config.cross_attention_dim
    config = CLIPTextConfig(
        vocab_size=CLIP_VOCAB_SIZE, hidden_size=width, intermediate_size=64,
        projection_dim=width, num_hidden_layers=1, num_attention_heads=12,
        max_position_embeddings=77, hidden_act="quick_gelu",
        bos_token_id=CLIP_VOCAB_SIZE - 2, eos_token_id=CLIP_VOCAB_SIZE - 1,
        pad_token_id=CLIP_VOCAB_SIZE - 1)
    text = _fill(CLIPTextModel(config), torch.Generator().manual_seed(seed + 1))
    text.to(dtype).save_pretrained(folder / "text_encoder", variant=suffix)
    _write_clip_tokenizer(folder / "tokenizer")
    _json(folder / "scheduler" / "scheduler_config.json", _SCHEDULER)
    for part, files in planned.items():
        if part != "model_index.json":
            _keep_only(folder / part, {Path(f).name for f in files})
    return folder


def _write_clip_tokenizer(folder: Path) -> None:
    symbols = _bytes_to_unicode()
    vocab = {s: i for i, s in enumerate(symbols)}
    vocab.update({f"{s}</w>": 256 + i for i, s in enumerate(symbols)})
    vocab.update({_START: 512, _END: 513})
    assert len(vocab) == CLIP_VOCAB_SIZE
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    _json(folder / "tokenizer_config.json", _CLIP_TOKENIZER_CONFIG)
    _json(folder / "special_tokens_map.json", _CLIP_SPECIAL)


# ----------------------------------------------------------------------------- BLIP


def write_tiny_blip(folder: Path, *, seed: int = 0) -> Path:
    """Write a BLIP captioner folder in the published layout (``BlipForConditionalGeneration``
    + ``BlipProcessor``: a BERT tokenizer and ``BlipImageProcessor``) with a tiny random model:
    one-layer vision and text transformers of width 32, images resized to
    :data:`BLIP_IMAGE_SIZE` px. Exactly the files of ``BLIP_FILES``.

    :param folder: Where to write (created; other files in it are deleted).
    :param seed: int; the weights' seed.
    :output folder: ``folder``.
    """
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration

    from semlink.models.downloads import BLIP_FILES

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *_WORDS, *string.ascii_lowercase,
              *(f"##{c}" for c in string.ascii_lowercase)]
    sep = tokens.index("[SEP]")
    (folder / "vocab.txt").write_text("\n".join(tokens) + "\n")
    _json(folder / "tokenizer_config.json", _BLIP_TOKENIZER_CONFIG)
    _json(folder / "special_tokens_map.json", _BERT_SPECIAL)
    _json(folder / "preprocessor_config.json", _BLIP_IMAGES)
    with tempfile.TemporaryDirectory() as tmp:  # tokenizer.json: the tokenizers library's
        BertTokenizer.from_pretrained(str(folder)).save_pretrained(tmp)
        shutil.copy(Path(tmp) / "tokenizer.json", folder / "tokenizer.json")
    config = BlipConfig(
        text_config={"vocab_size": len(tokens) + 2, "hidden_size": 32, "intermediate_size": 37,
                     "num_hidden_layers": 1, "num_attention_heads": 2,
                     "max_position_embeddings": 64, "projection_dim": 32,
                     "bos_token_id": len(tokens), "eos_token_id": sep, "pad_token_id": 0,
                     "sep_token_id": sep},
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1,
                       "num_attention_heads": 2, "image_size": BLIP_IMAGE_SIZE,
                       "patch_size": 8, "projection_dim": 32},
        projection_dim=32, image_text_hidden_size=16)
    model = _fill(BlipForConditionalGeneration(config), torch.Generator().manual_seed(seed))
    model.save_pretrained(str(folder))
    _keep_only(folder, set(BLIP_FILES))
    return folder
