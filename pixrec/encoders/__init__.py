"""Item encoders: one registry per side, keyed by the names users write in ``params.yaml``.

- image (``encoders.image.name``): ``pixel`` (offline default, no weights), ``resnet``
  (torchvision), ``clip`` (open_clip), ``dino`` (DINO/DINOv2 via transformers), ``dino_timm``
  (DINO and other ViTs via timm);
- text (``encoders.text.name``): ``sbert`` (sentence-transformers), ``bert`` (transformers
  ``AutoModel`` + pooling); both default to the packaged all-MiniLM-L6-v2 and run with
  ``encoders.text.backend``: ``torch`` (fp32), ``torch-bf16``, ``onnx`` or ``onnx-int8``
  (:mod:`.onnx_backend`).

Both sides run through one driver (:mod:`.driver`): a per-side adapter says which rows, in which
order, how a batch is encoded and what is masked; single run, shard and merge share the rest.

Weights may be a hub name, a local file/directory or an http(s) URL (see :mod:`.weights`);
``random`` is for tests and benchmarks only (loud warning, ``random_weights: true`` in meta.json).
With internet (unset ``HF_HUB_OFFLINE``), e.g. in ``params.yaml``::

    encoders.image: {name: dino, arch: dino_vits16}            # facebook/dino-vits16 from the hub
    encoders.image: {name: dino, arch: dinov2_vits14}          # facebook/dinov2-small
    encoders.image: {name: dino_timm, arch: vit_small_patch16_224.dino}   # timm's hub weights
    encoders.image: {name: clip, arch: ViT-B-32, weights: openai}
    encoders.image: {name: resnet, arch: resnet50, weights: IMAGENET1K_V2}
    encoders.text:  {name: bert, weights: bert-base-uncased, pooling: mean}

Offline, point ``weights`` at what you downloaded: a ``save_pretrained`` directory (dino, sbert,
bert), a checkpoint file (resnet, clip, timm), or a URL of either (archives are extracted).
``--shard i/n`` / ``--merge n`` (or torchrun) split a stage over processes or hosts with the same
bytes as one process (:mod:`.shards`); ``device: auto`` uses a GPU when torch sees one.
Importing this package is cheap; torch and the model libraries load with :mod:`.image` /
:mod:`.text`, which the names below import on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from pixrec.encoders.base import (
    Embedded,
    ImageEncoderConfig,
    TextEncoderConfig,
    write_embedded,
)

_LAZY = {  # the registries are complete once their side's module is imported
    "IMAGE_ENCODERS": "pixrec.encoders.image",
    "TEXT_ENCODERS": "pixrec.encoders.text",
    "build_image_encoder": "pixrec.encoders.image",
    "embed_images": "pixrec.encoders.image",
    "run_embed_images": "pixrec.encoders.image",
    "build_text_encoder": "pixrec.encoders.text",
    "embed_texts": "pixrec.encoders.text",
    "run_embed_text": "pixrec.encoders.text",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["IMAGE_ENCODERS", "TEXT_ENCODERS", "Embedded", "ImageEncoderConfig", "TextEncoderConfig",
           "build_image_encoder", "build_text_encoder", "embed_images", "embed_texts",
           "run_embed_images", "run_embed_text", "write_embedded"]
