"""Where the raw PixelRec layout comes from: ``data.source`` = ``synthetic`` | ``local`` | ``url``.

Every source writes the same layout (``interactions.csv``, ``item_info.csv``, ``covers/``) into a temp
dir that replaces ``data/raw`` in one rename (:func:`pixrec.io.atomic_dir`), so an interrupted run
leaves nothing a later stage mistakes for data. ``local`` and ``url`` validate what they bring in
(exact headers, field count of every row) and name the file and row of the first bad one, because a
user's copy of PixelRec is the input this project cannot control. Adding a source is one function and
one ``@SOURCES.register``.
"""

from __future__ import annotations

import csv
import gzip
import logging
import os
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixrec import schema as S
from pixrec.config import ConfigError, from_mapping
from pixrec.data.fetch import DownloadError, archive_kind, download, extract
from pixrec.data.synthetic import SyntheticConfig, write_dataset
from pixrec.io import atomic_dir, write_json
from pixrec.registry import Registry

log = logging.getLogger(__name__)
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


class SourceError(ValueError):
    """Input data that cannot be used as-is; the message names the file and row."""


@dataclass(frozen=True)
class UrlConfig:
    """``data.url``: HTTP(S) (or file://) URLs, each with an optional sha256."""

    interactions: str | None = None
    interactions_sha256: str | None = None
    items: str | None = None
    items_sha256: str | None = None
    covers: str | None = None  # .zip, .tar(.gz) or .7z of <item_id>.jpg files
    covers_sha256: str | None = None

    def __post_init__(self) -> None:
        for name in ("interactions_sha256", "items_sha256", "covers_sha256"):
            value = getattr(self, name)
            if value is not None and not _SHA256.match(str(value).strip()):
                raise ConfigError(f"data.url.{name}: {value!r} is not a sha256 (64 hex digits)")


@dataclass(frozen=True)
class DataConfig:
    """The ``data`` section of params.yaml, key for key."""

    source: str = "synthetic"
    preset: str = "default"
    seed: int = 20241124
    synthetic: dict[str, Any] = field(default_factory=dict)
    local_dir: str | None = None
    link: bool = True
    url: UrlConfig = field(default_factory=UrlConfig)

    def __post_init__(self) -> None:
        if isinstance(self.url, Mapping) or self.url is None:  # nested section from params.yaml
            object.__setattr__(self, "url", from_mapping(UrlConfig, self.url, "data.url"))
        if self.synthetic is None:
            object.__setattr__(self, "synthetic", {})
        if not isinstance(self.synthetic, Mapping):
            raise ConfigError("data.synthetic must be a mapping of generator overrides, e.g. {n_users: 500}")
        SOURCES.get(self.source)  # unknown source: the error lists the valid ones
        if self.source == "synthetic":
            self.synthetic_config()  # unknown preset or override: fail before any work
        elif self.source == "local" and not self.local_dir:
            raise ConfigError("data.local_dir: set it to a directory in PixelRec layout "
                              "for data.source=local")
        elif self.source == "url" and not (self.url.interactions and self.url.items):
            raise ConfigError("data.url.interactions and data.url.items are required for data.source=url")

    def synthetic_config(self) -> SyntheticConfig:
        return SyntheticConfig.from_preset(self.preset, self.seed, **dict(self.synthetic))

    @classmethod
    def from_params(cls, mapping: Mapping[str, Any] | None) -> DataConfig:
        """From the ``data`` mapping; unknown keys (also under ``url``) are rejected."""
        return from_mapping(cls, mapping, "data")


Source = Callable[[DataConfig, Path, Path], dict[str, Any]]
SOURCES: Registry[Source] = Registry("data source")


def materialise(config: DataConfig, out_dir: Path) -> dict[str, Any]:
    """Write the raw layout of ``config.source`` to ``out_dir`` (atomically); return a summary.

    Resumable downloads live in ``.<out_dir name>.downloads`` beside ``out_dir`` (outside DVC's
    output, so a killed run resumes); it is removed once the data is in place.
    """
    out_dir = Path(out_dir)
    cache = out_dir.parent / f".{out_dir.name}.downloads"
    with atomic_dir(out_dir) as tmp:
        summary = SOURCES.get(config.source)(config, tmp, cache)
    shutil.rmtree(cache, ignore_errors=True)
    return summary


@SOURCES.register("synthetic")
def _synthetic(config: DataConfig, out: Path, cache: Path) -> dict[str, Any]:
    summary = write_dataset(config.synthetic_config(), out)
    return {**summary, "preset": config.preset}


# --- validation shared by local and url -----------------------------------------------------------------
def validate_csv(path: Path, expected: tuple[str, ...]) -> int:
    """Check the exact header and that every row has as many fields; return the number of data rows.

    Row numbers are 1-based with the header as row 1 (as the split's report counts them); the line is
    named too when quoted newlines make it differ.
    """
    if not path.is_file():
        raise SourceError(f"{path}: file not found (expected the PixelRec layout: {S.RAW_INTERACTIONS}, "
                          f"{S.RAW_ITEMS}, {S.RAW_COVERS}/)")
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        reader = csv.reader(f, strict=True)
        row = 1
        try:
            header = next(reader, None)
            if header is None:
                raise SourceError(f"{path}: the file is empty; expected the header {','.join(expected)}")
            header = [h.strip() for h in header]
            if header and header[0].startswith("\ufeff"):
                header[0] = header[0][1:]
            if tuple(header) != expected:
                raise SourceError(f"{path}: row 1 (header) is {','.join(header)!r}; expected "
                                  f"{','.join(expected)!r}")
            n = 0
            for fields in reader:
                row += 1
                if not fields:  # blank line
                    continue
                if len(fields) != len(expected):
                    where = f"row {row}" + (f" (line {reader.line_num})" if reader.line_num != row else "")
                    raise SourceError(f"{path}: {where} has {len(fields)} fields, the header has "
                                      f"{len(expected)}: {','.join(fields)[:120]!r}")
                n += 1
        except csv.Error as exc:
            raise SourceError(f"{path}: row {row + 1} (line {reader.line_num}): malformed CSV "
                              f"({exc})") from None
    if n == 0:
        raise SourceError(f"{path}: no data rows after the header")
    return n


def _place(src: Path, dst: Path, link: bool) -> bool:
    """Hard-link ``src`` to ``dst`` when asked and possible (same file system), else copy. True if linked.

    Hard links, not symlinks: DVC caches the content, and the user's copy stays where it is. Raw data is
    immutable here, so sharing the inode is safe.
    """
    if link:
        try:
            os.link(src, dst)
            return True
        except OSError:
            pass
    shutil.copyfile(src, dst)
    return False


def _place_covers(src_dir: Path, out: Path, link: bool) -> dict[str, int]:
    names = sorted(n for n in os.listdir(src_dir) if n.endswith(".jpg") and not n.startswith("."))
    (out / S.RAW_COVERS).mkdir()
    linked = sum(_place(src_dir / n, out / S.RAW_COVERS / n, link) for n in names)
    return {"n_covers": len(names), "covers_linked": linked}


@SOURCES.register("local")
def _local(config: DataConfig, out: Path, cache: Path) -> dict[str, Any]:
    src = Path(str(config.local_dir)).expanduser()
    if not src.is_dir():
        raise SourceError(f"data.local_dir: {src} is not a directory (expected the PixelRec layout)")
    rows = {S.RAW_INTERACTIONS: validate_csv(src / S.RAW_INTERACTIONS, S.INTERACTION_COLUMNS),
            S.RAW_ITEMS: validate_csv(src / S.RAW_ITEMS, S.ITEM_COLUMNS)}
    linked = sum(_place(src / name, out / name, config.link) for name in rows)
    summary: dict[str, Any] = {
        "source": "local", "local_dir": str(src.resolve()), "n_interaction_rows": rows[S.RAW_INTERACTIONS],
        "n_item_rows": rows[S.RAW_ITEMS], "files_linked": linked, "warnings": [],
    }
    if (src / S.RAW_COVERS).is_dir():
        summary.update(_place_covers(src / S.RAW_COVERS, out, config.link))
    else:
        msg = f"{src / S.RAW_COVERS}: no covers directory; every item's image will be masked"
        log.warning(msg)
        summary["warnings"].append(msg)
        summary["n_covers"] = 0
    return summary


# --- url -----------------------------------------------------------------------------------------------
def _csv_from_download(path: Path, name: str, url: str, work: Path) -> Path:
    """The CSV itself, or ``name`` (or the only .csv) inside an archive or a .gz file."""
    kind = archive_kind(path)
    if kind is None:
        with open(path, "rb") as f:
            gzipped = f.read(2) == b"\x1f\x8b"
        if not gzipped:
            return path
        plain = work / name
        with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        return plain
    files = [p for p in extract(path, work / f"{name}.extracted") if p.suffix == ".csv"]
    exact = [p for p in files if p.name == name]
    if len(exact) == 1 or len(files) == 1:
        return (exact or files)[0]
    raise DownloadError(f"{url}: the archive should hold {name} (or a single .csv); found "
                        f"{sorted(p.name for p in files)}")


def _collect_covers(files: list[Path], covers: Path, url: str) -> int:
    """Move ``<item_id>.jpg`` files into ``covers/`` whatever folder the archive nested them in."""
    covers.mkdir()
    seen: dict[str, Path] = {}
    for path in files:
        if path.suffix != ".jpg" or path.name.startswith(".") or "__MACOSX" in path.parts:
            continue
        if path.name in seen:
            raise DownloadError(f"{url}: two covers named {path.name} ({seen[path.name]} and {path})")
        seen[path.name] = path
        os.replace(path, covers / path.name)
    return len(seen)


@SOURCES.register("url")
def _url(config: DataConfig, out: Path, cache: Path) -> dict[str, Any]:
    cfg = config.url
    cache.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"source": "url", "files": {}, "warnings": []}
    for key, name, expected in (("interactions", S.RAW_INTERACTIONS, S.INTERACTION_COLUMNS),
                                ("items", S.RAW_ITEMS, S.ITEM_COLUMNS)):
        url = getattr(cfg, key)
        got = download(url, cache / f"{key}.download", getattr(cfg, f"{key}_sha256"))
        csv_path = _csv_from_download(got.path, name, url, out / f".{key}")
        n_rows = validate_csv(csv_path, expected)
        os.replace(csv_path, out / name)
        shutil.rmtree(out / f".{key}", ignore_errors=True)
        manifest["files"][key] = {"url": url, "sha256": got.sha256, "bytes": got.bytes,
                                  "sha256_verified": bool(getattr(cfg, f"{key}_sha256")), "rows": n_rows}
    if cfg.covers:
        got = download(cfg.covers, cache / "covers.download", cfg.covers_sha256)
        staging = out / ".covers"
        n = _collect_covers(extract(got.path, staging), out / S.RAW_COVERS, cfg.covers)
        shutil.rmtree(staging)
        manifest["files"]["covers"] = {"url": cfg.covers, "sha256": got.sha256, "bytes": got.bytes,
                                       "sha256_verified": bool(cfg.covers_sha256), "n_covers": n}
        manifest["n_covers"] = n
    else:
        msg = "data.url.covers is not set; every item's image will be masked"
        log.warning(msg)
        manifest["warnings"].append(msg)
        manifest["n_covers"] = 0
    write_json(out / "download.json", manifest)
    return manifest


__all__ = ["SOURCES", "DataConfig", "SourceError", "UrlConfig", "materialise", "validate_csv"]
