"""The ONNX text encoders' graphs and tokenizers, kept on disk for later runs.

Building an ONNX text encoder (``encoders.text.backend: onnx | onnx-int8``) imports
sentence-transformers or transformers and exports the model with torch: ~15 s on two cores, which
``pixrec score-new`` would pay to embed three texts. So every build (the embed-text stage's, or
score-new's on a miss) stores the graph it runs and the model's tokenizer here, and score-new then
embeds with ONNX Runtime and the ``tokenizers`` library alone: the same graph and tokens, so the
stage's vectors. An entry is keyed by all the graph and the tokens depend on (the encoder settings, the
weights, the package versions), and written only once the stored tokenizer and graph reproduced the
model's own tokens and vectors on probe texts (a long one, accents, CJK). A failed write (read-only
home, full disk) only means the next run builds again.

Where: ``$PIXREC_ONNX_CACHE``, else ``~/.cache/pixrec/onnx`` (one folder per key; safe to delete).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from pixrec.atomic import atomic_dir
from pixrec.encoders.base import TextEncoder, config_meta

log = logging.getLogger("pixrec.encoders")

GRAPH, TOKENIZER, ENTRY = "model.onnx", "tokenizer.json", "entry.json"
# what the graph and the tokens depend on besides the config and the weights
PACKAGES = ("torch", "transformers", "sentence-transformers", "tokenizers", "onnx", "onnxruntime")
# texts the stored tokenizer and graph must reproduce exactly before an entry is written
PROBES = ["a", "Café | music | Ünïcödé façade naïve 東京 🎵", " ".join(["word"] * 600), "x | y"]
TOLERANCE = 1e-6  # same graph, same tokens, same session options: equal up to kernel rounding


def cache_root() -> Path:
    env = os.environ.get("PIXREC_ONNX_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "pixrec" / "onnx"


def _versions() -> dict[str, str | None]:
    def one(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {name: one(name) for name in PACKAGES}


def _files(path: Path | None) -> list[tuple[str, int, int]]:
    """A weights file's or folder's files (relative name, size, mtime): an edit in place is a new key."""
    if path is None or not Path(path).exists():
        return []
    p = Path(path)
    found = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
    return [(f.relative_to(p).as_posix() if p.is_dir() else f.name, f.stat().st_size, f.stat().st_mtime_ns)
            for f in found]


def entry_key(config: Any, source: Any) -> str:
    """The cache key of a text encoder config (``TextEncoderConfig``) and its resolved weights."""
    ident = {"config": {k: v for k, v in config_meta(config).items() if k not in ("batch_size", "fields")},
             "weights": source.as_meta(), "files": _files(source.path), "versions": _versions()}
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:32]


def session(path: Path, threads: int):
    """An ONNX Runtime CPU session as every ONNX text encoder runs one (the stage's vectors' bytes)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # shared cores: sleep, not spin
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class CachedTextEncoder(TextEncoder):
    """A stored entry as a text encoder: the ``tokenizers`` tokenizer and the ONNX graph, nothing else."""

    def __init__(self, entry_dir: Path, source: Any, backend: str, threads: int) -> None:
        from tokenizers import Tokenizer

        info = json.loads((entry_dir / ENTRY).read_text(encoding="utf-8"))
        self.name, self.dim, self.source, self.backend = info["name"], int(info["dim"]), source, backend
        self.device, self.about = "cpu", info["describe"]
        self.tokenizer = Tokenizer.from_file(str(entry_dir / TOKENIZER))
        self.session = session(entry_dir / GRAPH, threads)
        self.names = [i.name for i in self.session.get_inputs()]

    def tokenize(self, texts: list[str]) -> dict[str, np.ndarray]:
        encoded = self.tokenizer.encode_batch(texts)
        columns = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}
        return {name: np.array([getattr(e, columns[name]) for e in encoded], dtype=np.int64)
                for name in self.names}

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.session.run(None, self.tokenize(texts))[0].astype(np.float32, copy=False)

    def describe(self) -> dict:
        return self.about


def load(config: Any, source: Any, threads: int) -> CachedTextEncoder | None:
    """The stored encoder of ``config`` and ``source``, or None (no entry, or one that cannot be read)."""
    entry_dir = cache_root() / entry_key(config, source)
    if not (entry_dir / ENTRY).is_file():
        return None
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

    try:
        return CachedTextEncoder(entry_dir, source, config.backend, threads)
    except (OSError, ValueError, KeyError, ort_errors.Fail, ort_errors.InvalidProtobuf,
            ort_errors.NoSuchFile, ort_errors.InvalidArgument) as exc:  # damaged: build again
        log.warning("%s: unreadable ONNX cache entry (%s); building the encoder instead", entry_dir, exc)
        return None


def fast_tokenizer(hf_tokenizer: Any, max_length: int):
    """The ``tokenizers`` tokenizer behind a transformers fast tokenizer, set to truncate at
    ``max_length`` and pad to the longest text as the encoders call it; None when there is none."""
    backend = getattr(hf_tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(backend.to_str())
    tok.no_truncation()
    tok.no_padding()
    tok.enable_truncation(max_length=max_length, strategy="longest_first",
                          direction=hf_tokenizer.truncation_side)
    tok.enable_padding(direction=hf_tokenizer.padding_side, pad_id=hf_tokenizer.pad_token_id,
                       pad_type_id=hf_tokenizer.pad_token_type_id, pad_token=hf_tokenizer.pad_token)
    return tok


def store(config: Any, encoder: Any, graph: Path, hf_tokenizer: Any,
          tokenize: Callable[[list[str]], Mapping[str, Any]]) -> bool:
    """Keep ``encoder``'s ONNX ``graph`` and its tokenizer under its key, once both reproduce
    ``tokenize`` (the model's own) and ``encoder.encode`` on :data:`PROBES`; True when stored."""
    tok = fast_tokenizer(hf_tokenizer, config.max_length)
    if tok is None:
        return False
    entry_dir = cache_root() / entry_key(config, encoder.source)
    try:
        with atomic_dir(entry_dir) as tmp:
            shutil.copyfile(graph, tmp / GRAPH)
            tok.save(str(tmp / TOKENIZER))
            (tmp / ENTRY).write_text(json.dumps({"name": encoder.name, "dim": encoder.dim,
                                                 "describe": encoder.describe()}, indent=2), encoding="utf-8")
            cached = CachedTextEncoder(tmp, encoder.source, config.backend, encoder.onnx.threads)
            expected = {k: np.asarray(v) for k, v in tokenize(PROBES).items() if k in cached.names}
            tokens = cached.tokenize(PROBES)
            same = expected.keys() == tokens.keys() and all(np.array_equal(expected[k], tokens[k])
                                                            for k in tokens)
            if not same or np.abs(cached.encode(PROBES) - encoder.encode(PROBES)).max() > TOLERANCE:
                log.info("%s: the stored tokenizer does not reproduce the model's; not cached", entry_dir)
                raise _NotCached
    except _NotCached:
        return False
    except OSError as exc:
        log.info("%s: could not store the ONNX encoder (%s); the next run builds it again", entry_dir, exc)
        return False
    return True


class _NotCached(Exception):
    """Raised inside :func:`store`'s atomic block to drop the entry being written."""
