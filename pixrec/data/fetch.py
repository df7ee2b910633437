"""HTTP(S) download with resume and sha256 verification, and safe archive extraction.

Why this much care: PixelRec's files are large and come from file-sharing hosts whose connections
drop. A transfer continues from a ``<name>.part`` file with an HTTP ``Range`` request (guarded by
``If-Range`` so a changed remote file restarts from zero instead of splicing two versions), retries
with bounded back-off, and is renamed onto its final name only once complete and verified, so a
half-downloaded file is never mistaken for a finished one. Archives are extracted member by member
after checking every name, so an archive cannot write outside its destination.

Errors are :class:`DownloadError` (an ``InputError``, so stages report it in one line) naming the URL.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import shutil
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pixrec.errors import InputError

CHUNK = 1 << 20
RETRYABLE_HTTP = {408, 425, 429, 500, 502, 503, 504}
log = logging.getLogger(__name__)


class DownloadError(InputError):
    """A download or extraction that cannot succeed; the message names the URL or archive."""


@dataclass(frozen=True)
class Fetched:
    """A completed, verified download."""

    url: str
    path: Path
    sha256: str
    bytes: int
    resumed_from: int  # bytes already on disk when the last successful request started


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _validator(headers) -> str | None:
    """The value for ``If-Range``: a strong ETag, else Last-Modified."""
    etag = headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    return headers.get("Last-Modified")


def _total_from(resp, offset: int) -> int | None:
    """Full size of the remote file from Content-Range (206) or Content-Length (200)."""
    if resp.status == 206:
        content_range = resp.headers.get("Content-Range", "")  # bytes START-END/TOTAL
        total = content_range.rpartition("/")[2]
        return int(total) if total.isdigit() else None
    length = resp.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def download(url: str, dest: Path, sha256: str | None = None, *, retries: int = 5, timeout: float = 30.0,
             backoff: float = 0.5, setting: str = "data.url") -> Fetched:
    """Download ``url`` to ``dest``, resuming ``dest.part`` if present; verify ``sha256`` if given.

    Patience is for transfers that progress, not for hosts that never answer: an attempt ends after
    ``timeout`` seconds without a byte (connect included) and the next one resumes where it stopped;
    ``retries`` bounds the attempts in a row that receive nothing; and when nothing has arrived for
    ``timeout`` seconds since the start or the last attempt that received bytes, the download fails
    (a closed port or a host that accepts and never answers fails within ``timeout``). Each failed
    attempt is logged. A 4xx other than 408/429 fails at once. On a digest mismatch the file is
    removed and the error names the URL and both digests. A ``dest`` that already has the expected
    digest is not fetched again. ``file://`` URLs and plain paths are copied. ``setting``: the
    params.yaml entry the URL came from, named in the errors.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if sha256 and dest.is_file() and sha256_file(dest) == sha256.strip().lower():
        size = dest.stat().st_size  # finished and verified by an earlier run that failed later on
        return Fetched(url, dest, sha256.strip().lower(), size, size)
    if url.startswith("file://") or "://" not in url:
        return _copy_local(url, dest, sha256, setting)
    if not url.lower().startswith(("http://", "https://")):
        raise DownloadError(f"{url}: unsupported URL scheme (use http://, https:// or file://)")
    part = dest.with_name(dest.name + ".part")
    attempt = _Attempts(url, part, retries, timeout, backoff)
    while attempt.next():
        before = part.stat().st_size if part.exists() else 0
        try:
            if _attempt(url, part, attempt.socket_timeout()):
                break
            attempt.failed("connection closed before the end of the file", before)
        except _Satisfied:
            break
        except urllib.error.HTTPError as exc:
            if exc.code == 416:  # a resume past the end of a changed file: _attempt removed the .part
                attempt.failed(f"HTTP 416 for a resume at byte {before}; restarting", before)
                continue
            if exc.code not in RETRYABLE_HTTP:
                raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}; check the URL in params.yaml "
                                    f"({setting})") from None
            attempt.failed(f"HTTP {exc.code} {exc.reason}", before)
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as exc:
            attempt.failed(f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}", before)
    meta = part.with_name(part.name + ".json")
    try:
        actual = verify_sha256(part, sha256, url, setting)
    finally:
        meta.unlink(missing_ok=True)
    os.replace(part, dest)
    return Fetched(url, dest, actual, dest.stat().st_size, attempt.resumed_from)


class _Satisfied(Exception):
    """HTTP 416 on a resume whose ``.part`` already holds the whole file."""


class _Attempts:
    """When to try again: bounded attempts in a row without a byte, bounded time without a byte."""

    def __init__(self, url: str, part: Path, retries: int, timeout: float, backoff: float) -> None:
        self.url, self.part, self.retries, self.timeout, self.backoff = url, part, retries, timeout, backoff
        self.n = 0  # attempts so far
        self.idle = 0  # attempts in a row that received nothing
        self.since = time.monotonic()  # start, or end of the last attempt that received bytes
        self.last_error = "no attempt made"
        self.resumed_from = 0

    def next(self) -> bool:
        """Wait the back-off and return True to try again; raise when patience is spent."""
        if self.n:
            delay = min(self.backoff * 2 ** (self.idle - 1), 10.0) if self.idle else 0.0
            waited = time.monotonic() - self.since
            if self.idle and (self.idle > self.retries or waited + delay >= self.timeout):
                self._give_up(waited)
            log.warning("%s: attempt %d failed (%s); retrying in %.1f s", self.url, self.n, self.last_error,
                        delay)
            time.sleep(delay)
        self.n += 1
        self.resumed_from = self.part.stat().st_size if self.part.exists() else 0
        return True

    def socket_timeout(self) -> float:
        """Connect / read timeout for this attempt: what is left of the time without a byte."""
        return max(0.1, min(self.timeout, self.timeout - (time.monotonic() - self.since)))

    def failed(self, error: str, before: int) -> None:
        self.last_error = error
        if (self.part.stat().st_size if self.part.exists() else 0) > before:
            self.idle, self.since = 0, time.monotonic()  # it progressed: patience starts again
        else:
            self.idle += 1

    def _give_up(self, waited: float) -> None:
        kept = self.part.stat().st_size if self.part.exists() else 0
        raise DownloadError(f"{self.url}: download failed after {self.n} attempts, nothing received for "
                            f"{waited:.0f} s ({self.last_error}); {kept} bytes kept in {self.part} for a "
                            "later resume")


def _attempt(url: str, part: Path, timeout: float) -> bool:
    """One request, appending to ``part`` from its current size; True when the file is complete."""
    meta = part.with_name(part.name + ".json")  # remembers the validator for If-Range
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "pixrec-download/1", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        saved = json.loads(meta.read_text()) if meta.exists() else {}
        if saved.get("url") == url and saved.get("validator"):
            headers["If-Range"] = saved["validator"]
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as resp:
            if resp.status == 200 and offset:
                offset = 0  # server ignored the range or the file changed: start again
            total = _total_from(resp, offset)
            meta.write_text(json.dumps({"url": url, "validator": _validator(resp.headers)}))
            with open(part, "r+b" if offset else "wb") as f:
                f.seek(offset)
                f.truncate()
                while chunk := resp.read(CHUNK):
                    f.write(chunk)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # range not satisfiable: .part may already be complete
            total = exc.headers.get("Content-Range", "").rpartition("/")[2]
            if total.isdigit() and int(total) == offset:
                raise _Satisfied() from None
            part.unlink(missing_ok=True)
        raise
    return total is None or part.stat().st_size >= total


def _copy_local(url: str, dest: Path, sha256: str | None, setting: str) -> Fetched:
    src = Path(urllib.request.url2pathname(url[len("file://"):]) if url.startswith("file://") else url)
    if not src.is_file():
        raise DownloadError(f"{url}: file not found")
    tmp = dest.with_name(dest.name + ".part")
    shutil.copyfile(src, tmp)
    actual = verify_sha256(tmp, sha256, url, setting)
    os.replace(tmp, dest)
    return Fetched(url, dest, actual, dest.stat().st_size, 0)


def verify_sha256(path: Path, expected: str | None, url: str, setting: str = "data.url") -> str:
    """Return the file's sha256; if it differs from ``expected`` remove the file and raise."""
    actual = sha256_file(path)
    if expected and actual != expected.strip().lower():
        Path(path).unlink(missing_ok=True)
        raise DownloadError(f"{url}: sha256 mismatch: expected {expected.strip().lower()}, got {actual}; "
                            f"the file was removed. Fix the URL or its sha256 in params.yaml ({setting})")
    return actual


# --- archives ----------------------------------------------------------------------------------------
def archive_kind(path: Path) -> str | None:
    """``zip``, ``tar`` (any compression tarfile reads), ``7z`` or None, by content not by name."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "7z"
    if zipfile.is_zipfile(path):
        return "zip"
    try:
        if tarfile.is_tarfile(path):
            return "tar"
    except (OSError, EOFError, tarfile.TarError):
        pass
    return None


def truncated_zip(path: Path) -> bool:
    """Starts like a zip (a local file header) but has no readable central directory, which a zip keeps
    at its end: a zip cut short by an interrupted copy or download, or damaged."""
    with open(path, "rb") as f:
        head = f.read(4)
    return head == b"PK\x03\x04" and not zipfile.is_zipfile(path)


def html_title(path: Path) -> str | None:
    """The page's title (or its opening) if ``path`` holds an HTML page rather than data: what a
    file-sharing host serves for a login, cookie or preview page at a file's URL; else None."""
    import re

    with open(path, "rb") as f:
        head = f.read(4096)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").decode("utf-8", "replace")
    if not text.lower().startswith(("<!doctype html", "<html", "<head", "<body")):
        return None
    title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    return " ".join((title.group(1) if title else text[:60]).split())


def _safe_name(name: str, archive: Path) -> PurePosixPath | None:
    """The member's relative path, None for a directory entry; raises on absolute or ``..`` paths."""
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or (pure.parts and ":" in pure.parts[0]) or ".." in pure.parts:
        raise DownloadError(f"{archive}: member {name!r} would be written outside the destination; "
                            "refusing to extract this archive")
    parts = [p for p in pure.parts if p not in ("", ".")]
    return PurePosixPath(*parts) if parts else None


def extract(archive: Path, dest: Path) -> list[Path]:
    """Extract the regular files of a zip / tar(.gz/.bz2/.xz) / 7z archive under ``dest``.

    Every member name is checked before anything is written; links and devices are skipped (a link
    could point outside ``dest``). Returns the extracted file paths.
    """
    archive, dest = Path(archive), Path(dest)
    kind = archive_kind(archive)
    dest.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as zf:
                members = [(m, _safe_name(m.filename, archive)) for m in zf.infolist()]
                for info, rel in members:
                    if rel is None or info.is_dir():
                        continue
                    target = dest / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out, CHUNK)
                    written.append(target)
        elif kind == "tar":
            with tarfile.open(archive, "r:*") as tf:
                for info in tf:
                    rel = _safe_name(info.name, archive)
                    if rel is None or not info.isfile():
                        continue
                    target = dest / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    src = tf.extractfile(info)
                    assert src is not None
                    with src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out, CHUNK)
                    written.append(target)
        elif kind == "7z":
            import py7zr

            with py7zr.SevenZipFile(archive, "r") as zf:
                infos = zf.list()
                wanted = []
                for info in infos:
                    rel = _safe_name(info.filename, archive)
                    if rel is None or not info.is_file or info.is_symlink:
                        continue
                    wanted.append(info.filename)
                zf.extract(path=dest, targets=wanted)
            written = [dest / PurePosixPath(n.replace("\\", "/")) for n in wanted]
        else:
            raise DownloadError(f"{archive}: not a zip, tar or 7z archive")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise DownloadError(f"{archive}: cannot extract ({type(exc).__name__}: {exc})") from None
    except Exception as exc:
        if type(exc).__module__.startswith("py7zr"):
            raise DownloadError(f"{archive}: cannot extract ({type(exc).__name__}: {exc})") from None
        raise
    return written


__all__ = ["DownloadError", "Fetched", "archive_kind", "download", "extract", "html_title", "sha256_file",
           "truncated_zip", "verify_sha256"]
