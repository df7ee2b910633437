"""Where the raw PixelRec layout comes from: ``data.source`` = ``synthetic`` | ``local`` | ``url``.

Every source writes the same layout (``interactions.csv``, ``item_info.csv``, ``covers/``) into a temp
dir that replaces ``data/raw`` in one rename (:func:`pixrec.atomic.atomic_dir`), so an interrupted run
leaves nothing a later stage mistakes for data. ``local`` and ``url`` validate what they bring in with
the split stage's own reader (:mod:`pixrec.data.raw`: header, field count of every row, encoding,
timestamps), so a bad file is refused here naming the user's file and row. A file in another
encoding (``data.encoding``) is converted to UTF-8 on the way in; covers are flattened out of any
nested folder (``covers/covers/``) whatever their image suffix. Adding a source is one function and
one ``@SOURCES.register``.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from pixrec import schema
from pixrec.config import ConfigError, from_mapping, section
from pixrec.data.fetch import (DownloadError, Fetched, archive_kind, download, extract, html_title, sha256_file,
                               truncated_zip)
from pixrec.data.layout import find_layout
from pixrec.data.raw import (RawDataError, RawReport, is_cover_name, parse_interactions, parse_items,
                             read_csv_text)
from pixrec.data.synthetic import SyntheticConfig, write_dataset
from pixrec.errors import InputError
from pixrec.atomic import atomic_dir, write_json
from pixrec.registry import Registry

log = logging.getLogger(__name__)
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


class SourceError(InputError):
    """Input data that cannot be used as-is; the message names the file and row."""


@section
class UrlConfig:
    """``data.url``: HTTP(S) (or file://) URLs, each with an optional sha256 (null = not checked)."""

    interactions: str | None
    interactions_sha256: str | None
    items: str | None
    items_sha256: str | None
    covers: str | None  # .zip, .tar(.gz) or .7z of <item_id>.jpg files
    covers_sha256: str | None
    timeout_s: float  # no byte for this long: the attempt ends; nothing at all: the download fails

    def __post_init__(self) -> None:
        for name in ("interactions_sha256", "items_sha256", "covers_sha256"):
            value = getattr(self, name)
            if value is not None and not _SHA256.match(str(value).strip()):
                raise ConfigError(f"data.url.{name}: {value!r} is not a sha256 (64 hex digits)")
        if not self.timeout_s > 0:
            raise ConfigError(f"data.url.timeout_s: must be > 0, got {self.timeout_s!r}")


@section
class LocalFiles:
    """``data.local_files``: explicit paths (absolute or relative to ``data.local_dir``); null = by name."""

    interactions: str | None
    items: str | None
    covers: str | None  # a folder or an archive of covers


@section
class DataConfig:
    """The ``data`` section of params.yaml, key for key."""

    source: str
    preset: str
    seed: int
    synthetic: Any  # a mapping of overrides of the preset's generator knobs; null = none
    local_dir: str | None
    local_files: LocalFiles
    link: bool
    encoding: str
    url: UrlConfig

    def __post_init__(self) -> None:
        if self.synthetic is None:
            object.__setattr__(self, "synthetic", {})
        if not isinstance(self.synthetic, Mapping):
            raise ConfigError("data.synthetic must be a mapping of generator overrides; override one "
                              "knob with dvc exp run -S '+data.synthetic.n_users=500'")
        try:
            codecs.lookup(str(self.encoding))
        except LookupError:
            raise ConfigError(f"data.encoding: unknown encoding {self.encoding!r} (e.g. utf-8, latin-1, "
                              "cp1252, gb18030)") from None
        SOURCES.get(self.source)  # unknown source: the error lists the valid ones
        if self.source == "synthetic":
            self.synthetic_config()  # unknown preset or override: fail before any work
        elif self.source == "local" and not (self.local_dir or (self.local_files.interactions
                                                                and self.local_files.items)):
            raise ConfigError("data.local_dir: set it to the directory of your PixelRec copy (or name "
                              "each file in data.local_files) for data.source=local")
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



# --- validation and placement shared by local and url ---------------------------------------------------
def validate_csv(path: Path, expected: tuple[str, ...], encoding: str = "utf-8") -> int:
    """Read ``path`` with the split stage's own reader and parse its values; return the number of data
    rows. Anything the split would refuse (header, field count, encoding, no usable timestamp) is
    refused here, naming ``path`` — the user's file — and the row."""
    df = read_csv_text(path, expected, encoding)
    if expected == schema.INTERACTION_COLUMNS:
        parse_interactions(df, Path(path), RawReport())
    else:
        parse_items(df, RawReport())
    return df.height


def _is_utf8(encoding: str) -> bool:
    return codecs.lookup(encoding).name == "utf-8"


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


def _place_csv(src: Path, dst: Path, encoding: str, link: bool) -> bool:
    """``src`` into ``data/raw`` as UTF-8: linked or copied as is, or converted from ``encoding``."""
    if _is_utf8(encoding):
        return _place(src, dst, link)
    with open(src, encoding=encoding, newline="") as fin, \
            open(dst, "w", encoding="utf-8", newline="") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)
    return False


def _gather_covers(files: Iterable[Path], covers: Path, where: str, place: Callable[[Path, Path], Any]
                   ) -> int:
    """Put every ``<item_id>.<image suffix>`` file into ``covers/``, whatever folder it was nested in
    (``covers/covers/``, an archive's top folder); macOS junk and hidden files are skipped."""
    covers.mkdir()
    seen: dict[str, Path] = {}
    for path in sorted(files):
        if not is_cover_name(path.name) or "__MACOSX" in path.parts:
            continue
        if path.name in seen:
            raise SourceError(f"{where}: two covers named {path.name} ({seen[path.name]} and {path})")
        seen[path.name] = path
        place(path, covers / path.name)
    return len(seen)


def _covers_from(src: Path, out: Path, staging: Path, where: str, link: bool) -> dict[str, int]:
    """Covers from a folder (walked, flattened, hard-linked where asked) or an archive (extracted)."""
    if src.is_file() and truncated_zip(src):
        raise SourceError(f"{where}: {src} is a truncated or corrupt zip archive (it starts like a zip, but "
                          "the index a zip keeps at its end is missing); copy or download it again")
    if src.is_dir():
        files = [Path(d) / n for d, _, names in os.walk(src) for n in names]
        linked: list[bool] = []
        n = _gather_covers(files, out / schema.RAW_COVERS, where,
                           lambda a, b: linked.append(_place(a, b, link)))
        return {"n_covers": n, "covers_linked": sum(linked)}
    if archive_kind(src) is None:
        raise SourceError(f"{where}: {src} is neither a folder nor a zip, tar or 7z archive of covers")
    n = _gather_covers(extract(src, staging), out / schema.RAW_COVERS, where, os.replace)
    shutil.rmtree(staging, ignore_errors=True)
    return {"n_covers": n, "covers_linked": 0}


def _no_covers(summary: dict[str, Any], why: str) -> None:
    msg = f"{why}; every item's image will be masked (a text-only dataset)"
    log.warning(msg)
    summary["warnings"].append(msg)
    summary["n_covers"] = 0


# --- local -----------------------------------------------------------------------------------------------
@SOURCES.register("local")
def _local(config: DataConfig, out: Path, cache: Path) -> dict[str, Any]:
    files = config.local_files
    layout = find_layout(config.local_dir, files.interactions, files.items, files.covers)
    rows = {schema.RAW_INTERACTIONS: validate_csv(layout.interactions, schema.INTERACTION_COLUMNS, config.encoding),
            schema.RAW_ITEMS: validate_csv(layout.items, schema.ITEM_COLUMNS, config.encoding)}
    linked = sum(_place_csv(src, out / name, config.encoding, config.link)
                 for name, src in ((schema.RAW_INTERACTIONS, layout.interactions), (schema.RAW_ITEMS, layout.items)))
    summary: dict[str, Any] = {
        "source": "local", "n_interaction_rows": rows[schema.RAW_INTERACTIONS], "n_item_rows": rows[schema.RAW_ITEMS],
        "files_linked": linked, "encoding": codecs.lookup(config.encoding).name, "taken": list(layout.taken),
        "warnings": [],
    }
    if layout.covers is None:
        _no_covers(summary, f"{config.local_dir}: no covers folder or archive")
    else:
        summary.update(_covers_from(layout.covers, out, out / ".covers", str(layout.covers), config.link))
        if summary["n_covers"] == 0:
            _no_covers(summary, f"{layout.covers}: no cover image in it")
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
        work.mkdir(parents=True, exist_ok=True)
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


def _fetch(url: str, cache: Path, key: str, sha256: str | None, timeout: float) -> Fetched:
    """``url`` into the download cache, named by its URL. A file completed by an earlier run that
    failed later (say, on the covers' checksum) is reused, not fetched again."""
    dest = cache / f"{key}-{hashlib.sha256(url.encode()).hexdigest()[:12]}.download"
    if dest.is_file() and not sha256:
        size = dest.stat().st_size
        return Fetched(url, dest, sha256_file(dest), size, size)
    return download(url, dest, sha256, timeout=timeout, setting=f"data.url.{key}")


@SOURCES.register("url")
def _url(config: DataConfig, out: Path, cache: Path) -> dict[str, Any]:
    cfg = config.url
    cache.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"source": "url", "files": {}, "warnings": []}
    for key, name, expected in (("interactions", schema.RAW_INTERACTIONS, schema.INTERACTION_COLUMNS),
                                ("items", schema.RAW_ITEMS, schema.ITEM_COLUMNS)):
        url = getattr(cfg, key)
        got = _fetch(url, cache, key, getattr(cfg, f"{key}_sha256"), cfg.timeout_s)
        if (title := html_title(got.path)) is not None:
            got.path.unlink()  # not the file: the next run fetches again
            raise SourceError(f"{url} (data.url.{key}): the server sent an HTML page ({title!r}), not the "
                              f"CSV: a login, cookie or preview page? Set data.url.{key} to the file's "
                              "direct download link")
        csv_path = _csv_from_download(got.path, name, url, out / f".{key}")
        try:
            n_rows = validate_csv(csv_path, expected, config.encoding)
        except RawDataError as exc:  # the user knows the URL and the key, not the download cache
            raise SourceError(f"{url} (data.url.{key}): {exc}") from None
        _place_csv(csv_path, out / name, config.encoding, link=True)  # the cache keeps its copy
        shutil.rmtree(out / f".{key}", ignore_errors=True)
        manifest["files"][key] = {"url": url, "sha256": got.sha256, "bytes": got.bytes,
                                  "sha256_verified": bool(getattr(cfg, f"{key}_sha256")), "rows": n_rows}
    if cfg.covers:
        got = _fetch(cfg.covers, cache, "covers", cfg.covers_sha256, cfg.timeout_s)
        if truncated_zip(got.path):
            got.path.unlink()  # not reused: the next run downloads it afresh
            raise SourceError(f"{cfg.covers} (data.url.covers): the download is a truncated or corrupt zip "
                              "archive (it starts like a zip, but the index a zip keeps at its end is "
                              "missing); removed it, run again to download it afresh (data.url.covers_sha256 "
                              "catches a bad download at once)")
        n = _covers_from(got.path, out, out / ".covers", cfg.covers, link=False)["n_covers"]
        manifest["files"]["covers"] = {"url": cfg.covers, "sha256": got.sha256, "bytes": got.bytes,
                                       "sha256_verified": bool(cfg.covers_sha256), "n_covers": n}
        manifest["n_covers"] = n
        if n == 0:
            _no_covers(manifest, f"{cfg.covers}: no cover image in the archive")
    else:
        _no_covers(manifest, "data.url.covers is not set")
    write_json(out / "download.json", manifest)
    return manifest


__all__ = ["SOURCES", "DataConfig", "LocalFiles", "SourceError", "UrlConfig", "materialise", "validate_csv"]
