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
Importing this package loads nothing: import each name from its module (:mod:`.base`: configs and the
registries; :mod:`.image` / :mod:`.text`: the encoders, which load torch and the model libraries; the
registries are complete once their side's module is imported).
"""
