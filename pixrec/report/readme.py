"""Rewrite the README's results section, and nothing else, from the report's Markdown tables."""

from __future__ import annotations

from pathlib import Path

from pixrec.atomic import atomic_file
from pixrec.errors import InputError

START = "<!-- results:start -->"
END = "<!-- results:end -->"


def replace_section(text: str, body: str, source: str = "README") -> str:
    """``text`` with what lies between the markers replaced by ``body``; the markers must be there once."""
    n_start, n_end = text.count(START), text.count(END)
    if n_start != 1 or n_end != 1:
        raise InputError(
            f"{source}: expected exactly one '{START}' and one '{END}' marker, found {n_start} and {n_end}; "
            "add them where the results section belongs"
        )
    if text.index(END) < text.index(START):
        raise InputError(f"{source}: '{END}' must come after '{START}'")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{body.strip()}\n{END}{tail}"


def rewrite_readme(path: Path, body: str) -> bool:
    """Write ``body`` between the markers of ``path`` atomically; returns whether the file changed."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such README to rewrite")
    text = path.read_text(encoding="utf-8")
    new = replace_section(text, body, str(path))
    if new == text:
        return False
    with atomic_file(path) as tmp:
        tmp.write_text(new, encoding="utf-8")
    return True
