"""Image side: cover decoding, the ``resnet`` / ``clip`` / ``dino`` / ``dino_timm`` encoders, and the
image adapter of the embedding driver (:class:`ImageSide`).

Speed: ``num_workers`` threads decode and resize the next batches of covers (0: in the calling
thread) while the calling thread runs the model on the current one under ``torch.inference_mode``.
Threads, not DataLoader processes: PIL releases the GIL while it decodes and resizes and torch while
it computes, so they overlap without a worker start-up per run or a copy of every batch between
processes (measured on the pixel stage: ~25% less CPU per image, see ``pixrec bench``). JPEGs are
decoded at reduced scale with PIL's ``draft`` (DCT-domain downscaling) when the cover is much larger
than the model input. Batches are uint8 and the model side normalises a whole batch at once.

Robustness: a missing or undecodable cover is caught in ``__getitem__`` and returned as a status
code, then masked and counted in ``meta.json`` with its item id: never a crash, never a silent zero.
So is a placeholder: a cover narrower or lower than ``encoders.image.min_cover_px`` (a 1x1 pixel) or
of one flat colour. A huge cover (over PIL's decompression-bomb limit, ~89 Mpx) is decoded at reduced
scale (JPEG draft) and counted, without PIL's raw warning; one over twice the limit is refused and
counted.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from itertools import islice
from pathlib import Path

import numpy as np
import polars as pl
import torch
from PIL import Image
from torch import nn

from pixrec import schema
from pixrec.encoders import driver
from pixrec.encoders import pixel as _pixel  # noqa: F401  (registers "pixel")
from pixrec.encoders.base import (
    AUTOCAST_DTYPE,
    IMAGE_ENCODERS,
    Embedded,
    ImageEncoder,
    ImageEncoderConfig,
    Preprocess,
    read_item_columns,
    resolve_device,
    warn_random,
)
from pixrec.encoders.driver import EmbedSide, Finalize, identity
from pixrec.encoders.shards import RAW_FILE, STATUS_FILE, Shard, items_digest
from pixrec.encoders.weights import WeightsError, WeightsSource, load_error, load_errors, resolve
from pixrec.errors import InputError
from pixrec.numerics import environment

OK, MISSING, CORRUPT, PLACEHOLDER, HUGE, REDUCED = 0, 1, 2, 3, 4, 5
USABLE = (OK, REDUCED)  # REDUCED: a huge cover, decoded at reduced scale
REASONS = {MISSING: "no cover file", CORRUPT: "corrupt image",
           PLACEHOLDER: "placeholder cover (smaller than encoders.image.min_cover_px, or one flat colour)",
           HUGE: "cover too large to decode safely (over twice PIL's decompression-bomb limit)"}
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# what PIL raises for a bad image file (UnidentifiedImageError and truncation are OSErrors; some
# plugins raise SyntaxError or ValueError on malformed headers); anything else is a bug
DECODE_ERRORS = (OSError, SyntaxError, ValueError)
_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}
WHERE = "encoders.image"


# --------------------------------------------------------------------------------------------
# decoding


def decode_cover(path: str | Path, prep: Preprocess) -> np.ndarray:
    """Decode, resize and crop one cover -> uint8 (size, size, 3). Raises on a missing/bad file."""
    with Image.open(path) as im:
        return _decode(im, prep)


def _decode(im: Image.Image, prep: Preprocess) -> np.ndarray:
    """An opened cover -> uint8 (size, size, 3)."""
    target = prep.resize if prep.mode == "crop" else prep.size
    im.draft("RGB", (target, target))  # JPEG only: decode at 1/2, 1/4, 1/8 scale if still >= target
    rgb = im.convert("RGB")  # forces the full decode: a truncated file raises here
    resample = _RESAMPLE[prep.interpolation]
    S_ = prep.size
    if prep.mode == "squash":
        if rgb.size != (S_, S_):
            rgb = rgb.resize((S_, S_), resample)
    else:
        w, h = rgb.size
        scale = prep.resize / min(w, h)
        nw, nh = max(S_, round(w * scale)), max(S_, round(h * scale))
        if (nw, nh) != (w, h):
            rgb = rgb.resize((nw, nh), resample)
        left, top = (nw - S_) // 2, (nh - S_) // 2
        rgb = rgb.crop((left, top, left + S_, top + S_))
    return np.array(rgb, dtype=np.uint8)  # a writable copy, so torch.from_numpy is safe


class CoverDataset(torch.utils.data.Dataset):
    """Item i -> (uint8 (3, S, S), status), status one of OK, REDUCED (usable) or MISSING, CORRUPT,
    PLACEHOLDER, HUGE (masked); an unusable cover is a zero image."""

    def __init__(self, paths: list[str | None], prep: Preprocess, min_px: int) -> None:
        self.paths = paths
        self.prep = prep
        self.min_px = min_px

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        path = self.paths[i]
        if path is None:
            return self._blank(), MISSING
        try:
            # huge: over the size at which PIL warns (the caller silences that warning: counted as
            # REDUCED instead); decided from the size, not by catching the warning, which is not
            # thread-safe with several decode threads
            with Image.open(path) as im:
                if min(im.size) < self.min_px:
                    return self._blank(), PLACEHOLDER
                limit = Image.MAX_IMAGE_PIXELS
                huge = limit is not None and im.size[0] * im.size[1] > limit
                arr = _decode(im, self.prep)
        except FileNotFoundError:
            return self._blank(), MISSING
        except Image.DecompressionBombError:
            return self._blank(), HUGE
        except DECODE_ERRORS:  # truncated, not an image: masked and counted
            return self._blank(), CORRUPT
        if (arr == arr[:1, :1]).all():  # one flat colour: a "no image" placeholder, not a cover
            return self._blank(), PLACEHOLDER
        return torch.from_numpy(arr).permute(2, 0, 1), REDUCED if huge else OK

    def _blank(self) -> torch.Tensor:
        return torch.zeros(3, self.prep.size, self.prep.size, dtype=torch.uint8)


# --------------------------------------------------------------------------------------------
# neural encoders


class TorchImageEncoder(ImageEncoder):
    """A frozen ``nn.Module`` behind per-channel normalisation done once per batch."""

    model: nn.Module

    def _setup(self, model: nn.Module, preprocess: Preprocess, raw_dim: int) -> None:
        self.model = model.eval().requires_grad_(False)
        self.preprocess = preprocess
        self.raw_dim = raw_dim
        self._mean = torch.tensor(preprocess.mean).view(1, 3, 1, 1) * 255.0
        self._std = torch.tensor(preprocess.std).view(1, 3, 1, 1) * 255.0
        if self.source.is_random:
            warn_random(f"{WHERE} {self.name} ({self.arch})")

    def to(self, device: str) -> TorchImageEncoder:
        """Move model and normalisation constants; on CUDA, ``encode`` runs under fp16 autocast."""
        self.model.to(device)
        self._mean, self._std = self._mean.to(device), self._std.to(device)
        self.device = device
        return self

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 3, S, S) -> float32 (B, raw_dim), on :attr:`device`."""
        if self.device == "cpu":
            x = images.float().sub_(self._mean).div_(self._std)
            return self.forward(x)
        x = images.to(self.device, non_blocking=True).float().sub_(self._mean).div_(self._std)
        with torch.autocast(self.device, dtype=getattr(torch, AUTOCAST_DTYPE)):
            return self.forward(x).float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _random_init(build):
    """Build a model under a fixed, local torch seed: random weights, but reproducible ones."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build()


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from ``.pt/.pth/.bin`` (torch.save, tensors only) or ``.safetensors``.

    Common wrappers (``state_dict``, ``model``) and DataParallel ``module.`` prefixes are removed.
    """
    path = Path(path)
    if path.is_dir():
        raise WeightsError(f"{path}: expected a weights file, got a directory")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        obj = load_file(str(path))
    else:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise WeightsError(f"{path}: not a state dict (got {type(obj).__name__})")
    return {k.removeprefix("module."): v for k, v in obj.items()}


@IMAGE_ENCODERS.register("resnet")
class ResNetEncoder(TorchImageEncoder):
    """torchvision ResNet, penultimate (global-average-pooled) features.

    ``weights``: a torchvision enum name (``DEFAULT``, ``IMAGENET1K_V1``, ...; downloads, needs
    internet), a local ``.pth``/``.safetensors`` file, an http(s) URL of one, or ``random``.
    """

    ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")

    def __init__(self, config: ImageEncoderConfig, cache_dir: Path | None = None) -> None:
        import torchvision

        self.name, self.arch = "resnet", config.arch or "resnet50"
        if self.arch not in self.ARCHS:
            raise InputError(f"{WHERE}.arch: unknown resnet {self.arch!r}; valid: {list(self.ARCHS)}")
        self.source = resolve(config.weights, default="DEFAULT", where=f"{WHERE}.weights",
                              cache_dir=cache_dir)
        ctor = getattr(torchvision.models, self.arch)
        if self.source.is_random:
            model = _random_init(lambda: ctor(weights=None))
        else:
            model = ctor(weights=None)
            try:
                state = self._state_dict(torchvision, self.arch, self.source)
                # a head-less checkpoint is fine (we drop fc anyway); anything else must match exactly
                missing, unexpected = model.load_state_dict(state, strict=False)
                bad = [k for k in missing if not k.startswith("fc.")] + list(unexpected)
                if bad:
                    raise WeightsError(f"keys do not match {self.arch}: {bad[:8]}")
            except load_errors() as exc:
                raise load_error(f"{WHERE}.weights", self.arch, self.source, exc) from None
        raw_dim = model.fc.in_features
        model.fc = nn.Identity()
        size = config.image_size
        self._setup(model, Preprocess(size, round(size / 0.875), "crop", "bilinear",
                                      IMAGENET_MEAN, IMAGENET_STD), raw_dim)

    @staticmethod
    def _state_dict(torchvision, arch: str, source: WeightsSource) -> dict:
        if source.kind == "hub":
            enum = torchvision.models.get_model_weights(arch)
            try:
                weights = enum[source.spec]
            except KeyError:
                raise WeightsError(f"unknown torchvision weights {source.spec!r} for {arch}; valid: "
                                   f"{[w.name for w in enum]}, a local file or a URL") from None
            return weights.get_state_dict(progress=False, check_hash=True)
        return load_state_dict_file(source.path)


@IMAGE_ENCODERS.register("clip")
class ClipEncoder(TorchImageEncoder):
    """open_clip image tower, L2-normalised (as ``encode_image(normalize=True)``).

    ``weights``: an open_clip pretrained tag (``openai``, ``laion2b_s34b_b79k``, ...; needs
    internet), a local checkpoint file of the full model, a local open_clip model directory
    (``local-dir:`` schema), ``hf-hub:org/repo``, an http(s) URL of a file or archive, or ``random``.
    """

    def __init__(self, config: ImageEncoderConfig, cache_dir: Path | None = None) -> None:
        import open_clip

        self.name, self.arch = "clip", config.arch or "ViT-B-32"
        if self.arch not in open_clip.list_models():
            raise InputError(f"{WHERE}.arch: unknown open_clip model {self.arch!r}; see "
                             "open_clip.list_models(), e.g. ViT-B-32, ViT-B-16, RN50")
        self.source = resolve(config.weights, default="openai", where=f"{WHERE}.weights",
                              cache_dir=cache_dir)
        kwargs = {"force_image_size": config.image_size}
        src = self.source
        try:
            if src.is_random:
                model = _random_init(lambda: open_clip.create_model(self.arch, pretrained=None, **kwargs))
            elif src.path is not None and src.path.is_dir():
                model = open_clip.create_model(f"local-dir:{src.path}", **kwargs)
            elif src.kind == "hub" and src.spec.startswith("hf-hub:"):
                model = open_clip.create_model(src.spec, **kwargs)
            else:
                model = open_clip.create_model(self.arch, pretrained=src.location, require_pretrained=True,
                                               **kwargs)
        except load_errors() as exc:
            raise load_error(f"{WHERE}.weights", f"open_clip {self.arch}", src, exc) from None
        visual = model.visual  # the text tower is not needed: keep only the image tower
        cfg = dict(getattr(visual, "preprocess_cfg", {}) or {})
        if cfg.get("resize_mode", "shortest") not in ("shortest", "squash"):
            raise InputError(f"{WHERE}: open_clip resize_mode {cfg['resize_mode']!r} is not supported")
        size = config.image_size
        prep = Preprocess(size, size, "squash" if cfg.get("resize_mode") == "squash" else "crop",
                          cfg.get("interpolation", "bicubic"),
                          tuple(cfg.get("mean", (0.48145466, 0.4578275, 0.40821073))),
                          tuple(cfg.get("std", (0.26862954, 0.26130258, 0.27577711))))
        self._setup(visual, prep, int(visual.output_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.model(x), dim=-1)


# DINO / DINOv2 short names -> Hugging Face repos and the architecture (for random init only)
DINO_ARCHS: dict[str, tuple[str, dict]] = {
    "dino_vits16": ("facebook/dino-vits16", dict(hidden_size=384, num_attention_heads=6, patch_size=16)),
    "dino_vits8": ("facebook/dino-vits8", dict(hidden_size=384, num_attention_heads=6, patch_size=8)),
    "dino_vitb16": ("facebook/dino-vitb16", dict(hidden_size=768, num_attention_heads=12, patch_size=16)),
    "dino_vitb8": ("facebook/dino-vitb8", dict(hidden_size=768, num_attention_heads=12, patch_size=8)),
    "dinov2_vits14": ("facebook/dinov2-small", dict(hidden_size=384, num_attention_heads=6)),
    "dinov2_vitb14": ("facebook/dinov2-base", dict(hidden_size=768, num_attention_heads=12)),
    "dinov2_vitl14": ("facebook/dinov2-large",
                      dict(hidden_size=1024, num_attention_heads=16, num_hidden_layers=24)),
}


@IMAGE_ENCODERS.register("dino")
class DinoEncoder(TorchImageEncoder):
    """DINO / DINOv2 CLS token through transformers (``ViTModel`` / ``Dinov2Model``).

    ``arch`` a short name of :data:`DINO_ARCHS`; ``weights`` a hub repo (default: the arch's
    ``facebook/...`` repo), a local ``save_pretrained`` directory, a URL of an archive of one, or
    ``random``. For a timm model name use ``dino_timm``.
    """

    def __init__(self, config: ImageEncoderConfig, cache_dir: Path | None = None) -> None:
        self.name, self.arch = "dino", config.arch or "dino_vits16"
        self.image_size = config.image_size
        if self.arch not in DINO_ARCHS:
            raise InputError(f"{WHERE}.arch: {self.arch!r} is not a DINO short name {sorted(DINO_ARCHS)}; "
                             "for a timm model (timm.list_models('*dino*')) set name: dino_timm")
        self.source = resolve(config.weights, default=DINO_ARCHS[self.arch][0], where=f"{WHERE}.weights",
                              cache_dir=cache_dir)
        model = self._load()
        # ViT needs to be told to interpolate position embeddings; Dinov2 always does
        self._interpolate = model.config.model_type == "vit" and model.config.image_size != self.image_size
        size = config.image_size
        prep = Preprocess(size, round(size / 0.875), "crop", "bicubic", IMAGENET_MEAN, IMAGENET_STD)
        self._setup(model, prep, int(model.config.hidden_size))

    def _load(self) -> nn.Module:
        from transformers import AutoConfig, AutoModel, Dinov2Config, Dinov2Model, ViTConfig, ViTModel

        src = self.source
        try:
            if src.is_random:
                _, shape = DINO_ARCHS[self.arch]
                if self.arch.startswith("dinov2"):
                    cfg = Dinov2Config(image_size=self.image_size, patch_size=14, **shape)
                    return _random_init(lambda: Dinov2Model(cfg))
                cfg = ViTConfig(image_size=self.image_size, intermediate_size=4 * shape["hidden_size"],
                                layer_norm_eps=1e-6, **shape)
                return _random_init(lambda: ViTModel(cfg, add_pooling_layer=False))
            if AutoConfig.from_pretrained(src.location).model_type == "vit":
                # DINO v1 checkpoints carry no pooler: do not build one
                return ViTModel.from_pretrained(src.location, add_pooling_layer=False)
            return AutoModel.from_pretrained(src.location)
        except load_errors() as exc:
            raise load_error(f"{WHERE}.weights", f"DINO ({self.arch})", src, exc) from None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kwargs = {"interpolate_pos_encoding": True} if self._interpolate else {}
        return self.model(pixel_values=x, **kwargs).last_hidden_state[:, 0]


@IMAGE_ENCODERS.register("dino_timm")
class TimmDinoEncoder(TorchImageEncoder):
    """A timm model's pooled features (the CLS token for DINO ViTs), e.g. ``vit_small_patch16_224.dino``.

    ``weights``: a local file or URL (loaded with ``pretrained_cfg_overlay=dict(file=...)``), a hub
    repo, null for timm's own hub weights, or ``random``.
    """

    def __init__(self, config: ImageEncoderConfig, cache_dir: Path | None = None) -> None:
        import timm

        self.name, self.arch = "dino_timm", config.arch or "vit_small_patch16_224.dino"
        if not timm.is_model(self.arch):
            raise InputError(f"{WHERE}.arch: {self.arch!r} is not a timm model (see "
                             f"timm.list_models('*dino*')); for a DINO short name {sorted(DINO_ARCHS)} "
                             "set name: dino")
        self.source = resolve(config.weights, default="timm", where=f"{WHERE}.weights", cache_dir=cache_dir)
        model = self._load(timm, config.image_size)
        model.reset_classifier(0)
        data = timm.data.resolve_model_data_config(model)
        size = config.image_size
        interpolation = data.get("interpolation") if data.get("interpolation") in _RESAMPLE else "bicubic"
        prep = Preprocess(size, int(size / data.get("crop_pct", 1.0)), "crop", interpolation,
                          tuple(data["mean"]), tuple(data["std"]))
        self._setup(model, prep, int(model.num_features))

    def _load(self, timm, image_size: int) -> nn.Module:
        src = self.source
        kwargs: dict = {"img_size": image_size}
        try:
            if src.is_random:
                return _random_init(lambda: timm.create_model(self.arch, pretrained=False, **kwargs))
            if src.kind == "hub" and src.spec == "timm":
                return timm.create_model(self.arch, pretrained=True, **kwargs)
            if src.kind == "hub":
                return timm.create_model(self.arch, pretrained=True,
                                         pretrained_cfg_overlay=dict(hf_hub_id=src.spec), **kwargs)
            # keep the checkpoint's own head so timm loads strictly, then drop the head
            overlay = dict(file=str(src.path))
            return timm.create_model(self.arch, pretrained=True, pretrained_cfg_overlay=overlay, **kwargs)
        except load_errors() as exc:
            raise load_error(f"{WHERE}.weights", f"timm {self.arch}", src, exc) from None


# --------------------------------------------------------------------------------------------
# the embedding run


def build_image_encoder(config: ImageEncoderConfig, cache_dir: Path | None = None) -> ImageEncoder:
    """The registry entry ``config.name``, built (unknown names list the valid ones), on its device."""
    encoder = IMAGE_ENCODERS.get(config.name)(config, cache_dir)
    device = resolve_device(config.device)
    return encoder.to(device) if device != "cpu" else encoder


PREFETCH = 4  # batches decoded ahead, per decode thread


def _load_batch(dataset: CoverDataset, rows: range) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode one batch -> (uint8 (B, 3, S, S), int64 status (B,)), stacked as DataLoader's collate does."""
    got = [dataset[i] for i in rows]
    return torch.stack([image for image, _ in got]), torch.tensor([code for _, code in got])


def cover_batches(
    dataset: CoverDataset, batch_size: int, num_workers: int, pin: bool = False
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The dataset's batches in order; ``num_workers`` threads decode up to :data:`PREFETCH` batches each
    ahead of the consumer (0: decode in the calling thread)."""
    n = len(dataset)
    starts = iter(range(0, n, batch_size))
    if num_workers == 0:
        for s in starts:
            yield _load_batch(dataset, range(s, min(s + batch_size, n)))
        return
    with ThreadPoolExecutor(num_workers, thread_name_prefix="pixrec-decode") as pool:
        def submit(s: int):
            return pool.submit(_load_batch, dataset, range(s, min(s + batch_size, n)))

        pending = deque(submit(s) for s in islice(starts, PREFETCH * num_workers))
        while pending:
            images, status = pending.popleft().result()
            nxt = next(starts, None)
            if nxt is not None:
                pending.append(submit(nxt))
            yield (images.pin_memory() if pin else images), status


def encode_covers(
    encoder: ImageEncoder,
    paths: list[str | None],
    batch_size: int,
    num_workers: int,
    progress: bool = True,
    *,
    min_px: int,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Run ``encoder`` over covers -> (float32 (n, raw_dim), int8 status (n,), timings); ``min_px``:
    covers narrower or lower than this are placeholders."""
    from tqdm import tqdm

    n = len(paths)
    out = np.zeros((n, encoder.raw_dim), dtype=np.float32)
    status = np.empty(n, dtype=np.int8)
    loader = cover_batches(CoverDataset(paths, encoder.preprocess, min_px), batch_size, num_workers,
                           pin=encoder.device != "cpu")
    wait = compute = 0.0
    bar = tqdm(total=n, unit="img", desc=f"embed-images ({encoder.name})", file=sys.stderr,
               disable=not progress, mininterval=1.0)
    start = 0
    t = time.perf_counter()
    # PIL's raw warning for a huge cover never escapes (CoverDataset counts it); set here, in the calling
    # thread, for the decode threads too (they only read the filters)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        for images, st in loader:  # images uint8 (B, 3, S, S), st int64 (B,)
            t1 = time.perf_counter()
            wait += t1 - t
            b = len(st)
            ok = (st == OK) | (st == REDUCED)
            status[start:start + b] = st.numpy()
            if bool(ok.all()):
                out[start:start + b] = encoder.encode(images).cpu().numpy()
            elif bool(ok.any()):
                rows = start + np.flatnonzero(ok.numpy())
                out[rows] = encoder.encode(images[ok]).cpu().numpy()
            start += b
            t = time.perf_counter()
            compute += t - t1
            bar.update(b)
    bar.close()
    return out, status, {"wait_for_decode": wait, "model": compute}


def _cover_paths(items: pl.DataFrame, raw_dir: Path) -> list[str | None]:
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise InputError(f"{raw_dir}: raw data directory not found (expected the PixelRec layout)")
    return [None if p is None else str(raw_dir / p) for p in items[schema.COVER_PATH].to_list()]


def _check_readable(paths: list[str | None], status: np.ndarray, raw_dir: Path) -> None:
    """Every listed cover unreadable: a wrong ``--raw``, not bad luck."""
    listed = [p for p in paths if p is not None]
    if listed and not np.isin(status, (*USABLE, PLACEHOLDER)).any():
        raise InputError(f"{raw_dir}: none of the {len(listed)} covers listed in items.parquet could be "
                         f"read (e.g. {listed[0]}); is --raw the directory the split was made from?")


class ImageSide(EmbedSide):
    """The image side for the driver: covers in item_idx order, masked by decode status."""

    side, where, rate_key, arrays = "image", WHERE, "items_per_s", (RAW_FILE, STATUS_FILE)

    def __init__(self, items: pl.DataFrame, raw_dir: Path | None, config: ImageEncoderConfig) -> None:
        self.items, self.raw_dir, self.config = items, raw_dir, config  # raw_dir: None at a merge

    def order(self) -> np.ndarray:
        return np.arange(self.items.height, dtype=np.int64)

    def digest(self) -> str:
        return items_digest(self.items[schema.ITEM_ID], self.items[schema.COVER_PATH])

    def build(self, cache_dir: Path | None) -> ImageEncoder:
        return build_image_encoder(self.config, cache_dir)

    def encode(self, encoder: ImageEncoder, rows: np.ndarray, progress: bool) -> tuple[dict, dict]:
        paths = _cover_paths(self.items, self.raw_dir)
        mine = [paths[i] for i in rows]
        raw, status, loop = encode_covers(encoder, mine, self.config.batch_size, self.config.num_workers,
                                          progress, min_px=self.config.min_cover_px)
        self.check_readable(mine, status)
        return {RAW_FILE: raw, STATUS_FILE: status}, loop

    def check_readable(self, paths: list[str | None], status: np.ndarray) -> None:
        """The stage refuses a run where no listed cover could be read (a wrong ``--raw``)."""
        _check_readable(paths, status, self.raw_dir)

    def environment(self, encoder: ImageEncoder) -> dict:
        env = {
            "encoder": encoder.name,
            "arch": encoder.arch,
            "weights": encoder.source.as_meta(),
            "random_weights": encoder.random_weights,
            "preprocess": asdict(encoder.preprocess),
            **environment(),  # package versions and CPU kernel settings
        }
        if encoder.device != "cpu":  # CPU outputs keep their bytes: no device key there
            env |= {"device": encoder.device, "autocast": AUTOCAST_DTYPE}
        return env

    def masking(self, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        status = arrays[STATUS_FILE]
        return np.isin(status, USABLE), {reason: status == code for code, reason in REASONS.items()}

    def extra_meta(self, arrays: dict[str, np.ndarray]) -> dict:
        reduced = arrays[STATUS_FILE] == REDUCED
        if not reduced.any():  # usable, so not in "masked"; the key only when present (stable meta)
            return {}
        ids = self.items[schema.ITEM_ID].to_numpy()
        return {"decoded_reduced": {"reason": "huge cover (over PIL's ~89 Mpx limit) decoded at reduced "
                                    "scale", "n": int(reduced.sum()), "items": ids[reduced][:10].tolist()}}

    def finalizer(self, encoder: ImageEncoder | None, cache_dir: Path | None) -> Finalize:
        """The encoder's ``finalize``, fitted on training items with a usable cover. At a merge a global
        finalize (pixel: scaling + PCA) needs the encoder; building a pixel encoder is free, and
        encoders without one (the neural ones) are not loaded at all."""
        if encoder is None:
            cls = IMAGE_ENCODERS.get(self.config.name)
            if cls.finalize is ImageEncoder.finalize:
                return identity
            encoder = cls(replace(self.config, device="cpu"), cache_dir)
        trained = self.items[schema.N_TRAIN].to_numpy() > 0
        return lambda raw, usable: encoder.finalize(raw, usable, usable & trained)


def embed_images(
    items: pl.DataFrame, raw_dir: Path, config: ImageEncoderConfig, *, cache_dir: Path | None = None,
    progress: bool = True, encoder: ImageEncoder | None = None,
) -> Embedded:
    """Embed every item's cover. ``items``: item_idx order, with item_id, cover_path, n_train."""
    return driver.embed(ImageSide(items, raw_dir, config), cache_dir=cache_dir, progress=progress,
                        encoder=encoder)


def embed_image_shard(
    items: pl.DataFrame, raw_dir: Path, config: ImageEncoderConfig, shard: Shard, shard_dir: Path,
    *, cache_dir: Path | None = None, progress: bool = True, encoder: ImageEncoder | None = None,
) -> dict:
    """Encode this shard's batches (raw, pre-finalize features) into ``shard_dir``; returns its header."""
    return driver.embed_shard(ImageSide(items, raw_dir, config), shard, shard_dir, cache_dir=cache_dir,
                              progress=progress, encoder=encoder)


def merge_image_shards(
    items: pl.DataFrame, config: ImageEncoderConfig, count: int, shard_dir: Path,
    *, cache_dir: Path | None = None,
) -> Embedded:
    """Concatenate shards ``0..count-1`` row-aligned with ``items``, then finalize as one run would."""
    return driver.merge_shards(ImageSide(items, None, config), count, shard_dir, cache_dir=cache_dir)


def run_embed_images(
    split_dir: Path, raw_dir: Path, out_dir: Path, config: ImageEncoderConfig,
    *, cache_dir: Path | None = None, progress: bool = True,
    shard: Shard | None = None, merge: int | None = None, shard_dir: Path | None = None,
) -> dict:
    """The embed-images stage: read ``items.parquet``, embed (all, a shard, or merge), write ``out_dir``."""
    IMAGE_ENCODERS.get(config.name)  # fail on an unknown name before reading anything
    items = read_item_columns(split_dir, [schema.COVER_PATH, schema.N_TRAIN])
    return driver.run(ImageSide(items, raw_dir, config), out_dir, cache_dir=cache_dir, progress=progress,
                      shard=shard, merge=merge, shard_dir=shard_dir)


__all__ = ["DINO_ARCHS", "CoverDataset", "ImageSide", "build_image_encoder", "cover_batches", "decode_cover",
           "embed_image_shard", "embed_images", "encode_covers", "load_state_dict_file",
           "merge_image_shards", "run_embed_images"]
