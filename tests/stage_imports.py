"""What each dvc.yaml stage really imports of the project, statically, and the code deps that cover it.

A stage runs ``python -m stages.<x>``; Python then executes that module, every project module it
imports (at the top or inside a function, transitively) and every package ``__init__.py`` above each
of them. grimp (import-linter's graph builder) reads those imports from the source without running
it. A dvc.yaml code dep covers a module when it is the module's file or a folder above it.

    python tests/stage_imports.py           # print each stage's code deps as dvc.yaml should list them
    python tests/stage_imports.py --write   # rewrite them in dvc.yaml (data deps and comments stay)
"""

from __future__ import annotations

import functools
from pathlib import Path

import grimp
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pixrec", "stages")


@functools.cache
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, include_external_packages=False, exclude_type_checking_imports=True,
                             cache_dir=None)


def module_file(module: str) -> Path:
    """``pixrec.data`` -> pixrec/data/__init__.py; ``pixrec.data.raw`` -> pixrec/data/raw.py."""
    base = ROOT.joinpath(*module.split("."))
    return (base / "__init__.py" if base.is_dir() else base.with_suffix(".py")).relative_to(ROOT)


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def closure(entry: str) -> set[str]:
    """Every project module that ``python -m <entry>`` executes: its imports, transitively, and each
    one's parent packages (their ``__init__`` runs first, and may import more)."""
    g, seen, todo = graph(), set(), [entry]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(g.find_modules_directly_imported_by(module))
        todo.extend(_parents(module))
    return seen


def files(entry: str) -> set[Path]:
    return {module_file(m) for m in closure(entry)}


def stage_entries(dvc_yaml: Path = ROOT / "dvc.yaml") -> dict[str, tuple[str, list[str]]]:
    """stage name -> (its ``python -m`` module, its deps as written)."""
    stages = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8"))["stages"]
    out = {}
    for name, stage in stages.items():
        words = stage["cmd"].split()
        out[name] = (words[words.index("-m") + 1], [str(d) for d in stage.get("deps", [])])
    return out


def is_code(dep: str) -> bool:
    return dep.split("/")[0] in PACKAGES


def covered(path: Path, deps: list[str]) -> bool:
    return any(path == Path(d) or Path(d) in path.parents for d in deps)


def code_deps(entry: str) -> list[str]:
    """The deps dvc.yaml should list for ``entry``: a package folder when the stage runs every module
    in it (sub-folders included), else the files it runs."""
    needed = files(entry)
    chosen: set[Path] = set()
    for path in sorted(needed, key=lambda p: len(p.parts)):
        if covered(path, [str(c) for c in chosen]):
            continue
        folder = path.parent
        while folder != Path(".") and folder.parent != Path(".") and _all_needed(folder.parent, needed):
            folder = folder.parent
        whole = folder != Path(".") and folder.parent != Path(".") and _all_needed(folder, needed)
        chosen.add(folder if whole else path)
    return sorted(str(c) for c in chosen)


def problems(entry: str, deps: list[str]) -> list[str]:
    """What is wrong with a stage's code ``deps``: modules it runs that no dep covers (a change there
    would leave a stale output that DVC calls up to date), and code deps that cover nothing it runs
    (a change there re-runs it for nothing)."""
    needed, code = files(entry), [d for d in deps if is_code(d)]
    out = [f"missing: {p}" for p in sorted(needed) if not covered(p, code)]
    out += [f"not imported: {d}" for d in code if not any(covered(p, [d]) for p in needed)]
    return out


def _all_needed(folder: Path, needed: set[Path]) -> bool:
    return all(p.relative_to(ROOT) in needed for p in (ROOT / folder).rglob("*.py"))


def rewrite(dvc_yaml: Path = ROOT / "dvc.yaml") -> str:
    """dvc.yaml's text with each stage's code deps replaced by :func:`code_deps`, in place of the
    old ones (after the data deps); every other line is kept as written."""
    entries = stage_entries(dvc_yaml)
    out: list[str] = []
    stage, in_deps, placed = None, False, False
    for line in dvc_yaml.read_text(encoding="utf-8").splitlines():
        indent = len(line) - len(line.lstrip())
        if line.strip() and indent == 2 and line.rstrip().endswith(":"):
            stage = line.strip()[:-1]
        if line.strip() and indent == 4:
            in_deps, placed = line.strip() == "deps:" and stage in entries, False
        elif in_deps and line.lstrip().startswith("- "):
            dep = line.lstrip()[2:].split("#")[0].strip()
            if is_code(dep):
                if not placed:
                    out.extend(f"      - {d}" for d in code_deps(entries[stage][0]))
                    placed = True
                continue
        out.append(line)
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(ROOT))  # this checkout's packages, not an editable install's elsewhere
    if "--write" in sys.argv:
        (ROOT / "dvc.yaml").write_text(rewrite(), encoding="utf-8")
    for name, (entry, _) in stage_entries().items():
        print(f"{name}:  # python -m {entry}")
        for dep in code_deps(entry):
            print(f"      - {dep}")
