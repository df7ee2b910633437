"""Which of a user's files is what: the interactions file, the item file, the covers.

A user points ``data.local_dir`` at PixelRec as it was downloaded, not at a tidied copy: PixelRec's
own code reads interactions from files named like ``Pixel200K.csv``, and the covers come as a
``cover/`` folder or an archive. Each role is taken, in order, from its explicit path in
``data.local_files`` (absolute, or relative to ``local_dir``), else from the names below; what was
taken for what is returned as lines the download stage prints.

- interactions: ``interactions.csv``, else the one ``Pixel*.csv`` (any case);
- items: ``item_info.csv`` (any case);
- covers: a ``covers/`` or ``cover/`` folder (any case), else the one archive named ``covers.*`` or
  ``cover.*`` (.zip, .tar, .tar.gz, .tgz, .7z); none = a text-only dataset (every image masked).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pixrec import schema
from pixrec.errors import InputError

INTERACTION_PATTERN = re.compile(r"^pixel.*\.csv$", re.IGNORECASE)
COVER_DIRS = ("covers", "cover")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".7z")


class LayoutError(InputError):
    """The files of a local dataset cannot be told apart; the message says which key to set."""


@dataclass(frozen=True)
class Layout:
    """The files a local dataset provides; ``covers`` is a folder, an archive or None."""

    interactions: Path
    items: Path
    covers: Path | None
    taken: tuple[str, ...]  # "interactions <- /path/Pixel200K.csv (recognised name)", ...


def _explicit(root: Path | None, value: str | None, key: str) -> Path | None:
    if value is None:
        return None
    path = Path(str(value)).expanduser()
    if not path.is_absolute():
        if root is None:
            raise LayoutError(f"data.local_files.{key}: {value} is relative, but data.local_dir is not set")
        path = root / path
    if not path.exists():
        raise LayoutError(f"data.local_files.{key}: {path} does not exist")
    return path


def _named(root: Path, names: tuple[str, ...], want_dir: bool) -> Path | None:
    """The first entry of ``root`` whose name is one of ``names`` (any case), in ``names`` order."""
    entries = {p.name.lower(): p for p in sorted(root.iterdir()) if p.is_dir() == want_dir}
    return next((entries[n] for n in names if n in entries), None)


def _only(root: Path, match, what: str, key: str) -> Path | None:
    found = sorted(p for p in root.iterdir() if p.is_file() and match(p.name))
    if len(found) > 1:
        raise LayoutError(f"{root}: several candidates for the {what}: {[p.name for p in found]}; "
                          f"name one in params.yaml data.local_files.{key}")
    return found[0] if found else None


def _is_cover_archive(name: str) -> bool:
    low = name.lower()
    return low.startswith(("covers.", "cover.")) and low.endswith(ARCHIVE_SUFFIXES)


def find_layout(local_dir: str | None, interactions: str | None, items: str | None,
                covers: str | None) -> Layout:
    """Resolve the three roles (see the module docstring); errors name the key to set."""
    root = Path(str(local_dir)).expanduser() if local_dir else None
    if root is not None and not root.is_dir():
        raise LayoutError(f"data.local_dir: {root} is not a directory (expected PixelRec as downloaded)")
    taken: list[str] = []
    found: dict[str, Path | None] = {}
    for role, value, guess in (
        ("interactions", interactions, lambda: _named(root, (schema.RAW_INTERACTIONS,), False)
         or _only(root, INTERACTION_PATTERN.match, "interactions file", "interactions")),
        ("items", items, lambda: _named(root, (schema.RAW_ITEMS,), False)),
        ("covers", covers, lambda: _named(root, COVER_DIRS, True)
         or _only(root, _is_cover_archive, "cover archive", "covers")),
    ):
        path = _explicit(root, value, role)
        how = "data.local_files." + role
        if path is None and root is not None:
            path, how = guess(), "recognised name"
        found[role] = path
        taken.append(f"{role} <- {path} ({how})" if path else f"{role} <- none")
    for role, names in (("interactions", f"{schema.RAW_INTERACTIONS} or Pixel*.csv"), ("items", schema.RAW_ITEMS)):
        if found[role] is None:
            raise LayoutError(f"{root}: no {role} file ({names}); name it in params.yaml "
                              f"data.local_files.{role}")
        if not found[role].is_file():
            raise LayoutError(f"data.local_files.{role}: {found[role]} is not a file")
    return Layout(found["interactions"], found["items"], found["covers"], tuple(taken))


__all__ = ["Layout", "LayoutError", "find_layout"]
