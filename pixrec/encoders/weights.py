"""Where an encoder's weights come from: a hub name, a local file or directory, or an http(s) URL.

Every entry of ``encoders.*.weights`` goes through :func:`resolve`, so a URL ends up on the same
local-path code a user with downloaded weights runs. URLs are fetched once into a cache directory
(``$PIXREC_WEIGHTS_CACHE`` or ``~/.cache/pixrec/weights``), written atomically, optionally checked
against a ``#sha256=<hex>`` fragment, and archives (.zip, .tar, .tar.gz, .tgz) are extracted, so a
Hugging Face-style model directory can be served as one file. ``random`` is for tests only: the
encoder warns loudly and the embedding metadata says ``random_weights: true``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from pixrec.atomic import atomic_dir
from pixrec.data.fetch import DownloadError, download, extract, sha256_file
from pixrec.errors import InputError

log = logging.getLogger("pixrec.encoders")

RANDOM = "random"
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
_CHUNK = 1 << 20


class WeightsError(InputError):
    """Weights that cannot be found, fetched or loaded; the message says what to set instead."""


@dataclass(frozen=True)
class WeightsSource:
    """A resolved ``weights`` entry.

    ``kind``: ``random`` | ``local`` (file or dir the user named) | ``url`` (fetched into the cache) |
    ``hub`` (a name the model library resolves itself, e.g. a Hugging Face repo or a torchvision enum)
    | ``packaged`` (files shipped inside a PyPI package). ``path`` is the local file/dir, if any.
    """

    kind: str
    spec: str
    path: Path | None = None
    sha256: str | None = None

    @property
    def is_random(self) -> bool:
        return self.kind == RANDOM

    @property
    def location(self) -> str:
        """What to hand to the model library: the local path, or the hub name."""
        return str(self.path) if self.path is not None else self.spec

    def as_meta(self) -> dict:
        d = asdict(self)
        d["path"] = None if self.path is None else str(self.path)
        return d


def default_cache_dir() -> Path:
    env = os.environ.get("PIXREC_WEIGHTS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "pixrec" / "weights"


def is_url(spec: str) -> bool:
    return urllib.parse.urlsplit(spec).scheme in ("http", "https")


_FILE_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt", ".npz", *ARCHIVE_SUFFIXES)


def _looks_like_path(spec: str) -> bool:
    """Hub names are ``name`` or ``org/name``; anything else path-like is a (missing) local path."""
    return (spec.startswith(("/", "./", "../", "~")) or spec.count("/") >= 2
            or spec.lower().endswith(_FILE_SUFFIXES))


def resolve(
    spec: str | None,
    *,
    default: str | None,
    where: str,
    cache_dir: Path | None = None,
    packaged: bool = False,
) -> WeightsSource:
    """Resolve ``spec`` (``None`` = ``default``) to a :class:`WeightsSource`.

    An existing local path wins; then ``random``; then an http(s) URL (fetched); anything else that
    looks like a path but does not exist is an error; the rest is a hub name for the library.
    ``packaged`` marks the default as files shipped in a package (recorded in the metadata).
    """
    if spec is None:
        if default is None:
            raise WeightsError(f"{where}: no weights given and this encoder has no default")
        source = resolve(default, default=None, where=where, cache_dir=cache_dir)
        if packaged and source.kind == "local":
            return WeightsSource("packaged", source.spec, source.path, source.sha256)
        return source
    spec = str(spec).strip()
    local = Path(spec).expanduser()
    if spec and local.exists():
        local = local.resolve()
        return WeightsSource("local", spec, local, sha256_file(local) if local.is_file() else None)
    if spec.lower() == RANDOM:
        return WeightsSource(RANDOM, RANDOM)
    if is_url(spec):
        path = fetch_url(spec, cache_dir or default_cache_dir(), where=where)
        return WeightsSource("url", spec, path, sha256_file(path) if path.is_file() else None)
    if not spec or _looks_like_path(spec):
        raise WeightsError(f"{where}: weights path {spec!r} does not exist (give an existing file or "
                           "directory, an http(s) URL, or a hub name)")
    return WeightsSource("hub", spec)


def _split_hash(url: str) -> tuple[str, str | None]:
    """``https://host/f.pt#sha256=abc`` -> (``https://host/f.pt``, ``abc``)."""
    parts = urllib.parse.urlsplit(url)
    frag = parts.fragment
    if frag.startswith("sha256="):
        return urllib.parse.urlunsplit(parts._replace(fragment="")), frag.split("=", 1)[1].lower()
    return url, None


def _is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def fetch_url(url: str, cache_dir: Path, *, where: str = "weights", timeout: float = 60.0) -> Path:
    """Download ``url`` into ``cache_dir`` once (resumable, hash-checked: :func:`pixrec.data.fetch.download`);
    return the file or the extracted archive directory (its single top-level folder when it has one)."""
    bare, expected = _split_hash(url)
    name = Path(urllib.parse.urlsplit(bare).path).name or "weights"
    key = hashlib.sha256(bare.encode()).hexdigest()[:16]
    folder = Path(cache_dir).expanduser() / key
    target = folder / name
    try:
        # a cached file is used as is when no sha256 is given, else only if it matches (hashed once)
        if not (target.is_file() and (expected is None or sha256_file(target) == expected)):
            if target.is_file():
                log.warning("%s: cached %s does not match sha256 %s; fetching again", where, target, expected)
                target.unlink()
            log.info("%s: downloading %s -> %s", where, bare, target)
            download(bare, target, expected, timeout=timeout, setting=where)
        if not _is_archive(name):
            return target
        out = folder / "extracted"
        if not out.is_dir():
            with atomic_dir(out) as tmp:
                extract(target, tmp)
    except DownloadError as exc:
        raise WeightsError(f"{where}: cannot download or unpack {exc}; or download the file yourself "
                           "and give its local path") from None
    children = [p for p in out.iterdir() if not p.name.startswith(".")]
    return children[0] if len(children) == 1 and children[0].is_dir() else out


def first_line(exc: BaseException) -> str:
    """The first line of an exception, for one-line error messages instead of library tracebacks."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def load_errors() -> tuple[type[BaseException], ...]:
    """What the model libraries raise for the user's weights, to turn into one line naming the key.

    A missing file, an unreachable URL or an offline hub name (OSError; huggingface_hub's errors are
    OSErrors), a file that is not a checkpoint (pickle / safetensors errors, EOFError), the wrong
    architecture (RuntimeError from ``load_state_dict``, ValueError from a transformers config), and
    our own :class:`WeightsError`. Anything else is a bug and keeps its traceback.
    """
    import pickle

    from safetensors import SafetensorError

    return (OSError, EOFError, RuntimeError, ValueError, pickle.UnpicklingError, SafetensorError)


def load_error(where: str, what: str, source: WeightsSource, exc: BaseException) -> WeightsError:
    """A :class:`WeightsError` for a failed load, with what to do about it."""
    if source.kind == "hub":
        hint = (" If this machine is offline (HF_HUB_OFFLINE=1, no model hub), set the weights to a "
                "local file/directory or an http(s) URL you can reach.")
    else:
        hint = (f" Give {where} a checkpoint of {what} (a local file or directory, an http(s) URL or a "
                "hub name), or change the architecture to match the checkpoint.")
    return WeightsError(f"{where}: could not load {what} from {source.kind} weights "
                        f"{source.spec!r}: {first_line(exc)}.{hint}")


__all__ = ["RANDOM", "WeightsError", "WeightsSource", "default_cache_dir", "fetch_url", "is_url",
           "load_error", "load_errors", "resolve", "sha256_file"]
