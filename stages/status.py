"""status (a command, not a DVC stage): what in this workspace is not up to date, one line per reason, and
the one command to run.

    pixrec status [--workspace .]

Why: ``dvc status`` lists every dependency of a stage that never ran as ``modified`` (an interrupted run
gives ~100 lines blaming ``data/embeddings/image`` for ablation cells that simply have not run). This
reads ``dvc status --json`` and ``dvc.lock`` (a stage absent from it never ran) and groups the stages:
never run, changed command / params / deps (naming them), outputs deleted or modified.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import typer

from stages._params import fail_cleanly

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

SHOWN = 6  # stage names (and changed deps) listed per line before "+N more"


def dvc_status(workspace: Path) -> dict[str, list[Any]]:
    """``dvc status --json`` of ``workspace``: {stage: [{"changed deps": ...}, "changed checksum", ...]}."""
    from pixrec.errors import InputError

    proc = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=workspace,
                          capture_output=True, text=True)
    if proc.returncode:
        said = [line for line in proc.stderr.splitlines() if line.strip()] or [f"exit {proc.returncode}"]
        raise InputError(f"{workspace}: dvc status failed: {said[-1].removeprefix('ERROR: ')}")
    return json.loads(proc.stdout or "{}")


def locked_stages(workspace: Path) -> set[str]:
    """The stages ``dvc.lock`` records: those that ran to the end at least once."""
    import yaml

    lock = Path(workspace) / "dvc.lock"
    if not lock.is_file():
        return set()
    return set((yaml.safe_load(lock.read_text(encoding="utf-8")) or {}).get("stages", {}))


def _listed(names: list[str]) -> str:
    more = len(names) - SHOWN
    return ", ".join(names[:SHOWN]) + (f" (+{more} more)" if more > 0 else "")


def _reason(stage: str, entries: list[Any], locked: set[str]) -> tuple[str, str, str]:
    """(what is wrong, its detail, the DVC verb that fixes it) for one stage of ``dvc status``."""
    if stage not in locked:
        return "never run", "", "repro"
    merged: dict[str, dict[str, Any]] = {}
    flags = set()
    for entry in entries:
        if isinstance(entry, dict):
            for kind, changed in entry.items():
                merged.setdefault(kind, {}).update(changed)
        else:
            flags.add(entry)
    deps = merged.get("changed deps", {})
    params = [key for status in deps.values() if isinstance(status, dict) for key in status]
    files = [path for path, status in deps.items() if not isinstance(status, dict)]
    kinds = [kind for kind, present in (("command", "changed checksum" in flags), ("params", params),
                                        ("deps", files)) if present]
    if kinds:
        detail = "; ".join(part for part in (", ".join(params), _listed(files)) if part)
        return "changed " + ", ".join(kinds), detail, "repro"
    outs = merged.get("changed outs", {})
    if outs:
        states = sorted(set(outs.values()))
        verb = "checkout" if states == ["deleted"] else "repro"  # a deleted output is still in the cache
        return "outputs " + " / ".join(states), _listed(sorted(outs)), verb
    return "always runs", "", "repro"


def _targets(stages: list[str]) -> str:
    """Stage names for a dvc command: cells of one matrix stage as its name (``dvc repro ablate``)."""
    groups: dict[str, list[str]] = {}
    for stage in stages:
        groups.setdefault(stage.split("@")[0], []).append(stage)
    return " ".join(base if len(cells) > 1 else cells[0] for base, cells in groups.items())


def status_lines(status: dict[str, list[Any]], locked: set[str]) -> list[str]:
    """One line per reason (stages sharing it listed together, in dvc.yaml order) with its command,
    then ``run: <the one command>``; a workspace that is up to date says so."""
    if not status:
        return ["Data and pipelines are up to date."]
    groups: dict[tuple[str, str, str], list[str]] = {}
    for stage, entries in status.items():
        groups.setdefault(_reason(stage, entries, locked), []).append(stage)
    lines = [f"{what}: {_listed(stages)}{f' ({detail})' if detail else ''} -> dvc {verb} {_targets(stages)}"
             for (what, detail, verb), stages in groups.items()]
    restore_only = all(verb == "checkout" for _, _, verb in groups)
    final = "dvc checkout" if restore_only else "dvc repro"
    why = "restores the outputs from the cache" if restore_only else "runs these and what depends on them"
    return [*lines, f"run: {final}  ({why})"]


@app.command()
@fail_cleanly
def main(workspace: Path = typer.Option(Path("."), help="a DVC workspace of this pipeline")) -> None:
    for line in status_lines(dvc_status(workspace), locked_stages(workspace)):
        typer.echo(line)


if __name__ == "__main__":
    app()
