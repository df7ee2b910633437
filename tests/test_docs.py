"""Every runnable fenced block of README.md and docs/*.md runs as written, so a documented command
cannot drift from the code.

Sybil parses the Markdown: ```bash (or sh, shell) blocks run with bash -e in a small trained workspace,
```python blocks with Sybil's Python evaluator in the same folder, one test per block, in document
order. A block that cannot run there (it builds a venv, re-runs the whole pipeline, needs your PixelRec
copy, real URLs, several hosts or a placeholder such as ``<exp>``) is preceded in the Markdown by
``<!-- skip: next "why" -->`` and reported as skipped with that reason.

The workspace (built once, slow tier): a git + DVC repo of the project's stages up to ``recommend`` plus
``headline`` and one ablation cell, reproduced on the ``tiny`` preset with small models (as
tests/test_recommend.py), with the project's .gitignore, DVC config and plot definitions, committed on
``main``, a ``.venv`` link to this venv, and a ``new.csv`` / ``new_covers/`` of new items for
``score-new``.

Ids: the docs show ids of the default data (params.yaml's preset), the workspace has the tiny preset's.
Each id token in a block (``u<digits>`` / ``i<digits>``) must be a user or item id of the default data
(generated here, the generator alone: a few seconds) and is swapped for a workspace id, the same one
wherever the docs use it: the docs' users in order of appearance get the workspace's test users with the
longest histories, their items its most-interacted items. An id that is not in the default data fails.
"""

from __future__ import annotations

import ast
import contextlib
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pytest
import yaml
from dvc_repo import TINY_REPRO, dvc_env, make_dvc_repo, run_dvc
from sybil import Document, Example, Lexeme, Sybil
from sybil.evaluators.python import PythonEvaluator
from sybil.parsers.markdown import CodeBlockParser, SkipParser

from pixrec import schema

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELLS = ("bash", "sh", "shell")

# what the docs' commands need: the stages up to recommend, the headline, one ablation cell
STAGES = ["headline", "download", "split", "embed-images", "embed-text", "negative-sample", "train", "tune",
          "evaluate", "recommend", "ablate"]
# tiny data and models; the flagship's epochs cut too: the README's experiments retrain it twice
WORKSPACE_PARAMS = {**TINY_REPRO, "two_tower.train.epochs": 3, "ablate.variants": ["no_image"]}
ID_TOKEN = re.compile(r"\b([ui])\d+\b")


@dataclass
class Workspace:
    path: Path
    users: list[str]  # test users, longest training history first
    items: list[str]  # items with training interactions, most first


@dataclass
class DocIds:
    """The default data's ids the docs show -> the workspace's (see the module docstring)."""

    default_users: set[str]
    default_items: set[str]
    swapped: dict[str, str] = field(default_factory=dict)

    def substitute(self, source: str, workspace: Workspace, where: str) -> str:
        def swap(match: re.Match[str]) -> str:
            token, kind = match.group(0), match.group(1)
            known, pool = ((self.default_users, workspace.users) if kind == "u"
                           else (self.default_items, workspace.items))
            if token not in known:
                raise AssertionError(f"{where}: {token!r} is not a {'user' if kind == 'u' else 'item'} "
                                     "id of the default data: a new user's command would fail")
            if token not in self.swapped:
                taken = sum(1 for k in self.swapped if k[0] == kind)
                self.swapped[token] = pool[taken]
            return self.swapped[token]

        return ID_TOKEN.sub(swap, source)


class Runner:
    """The evaluators Sybil calls; the workspace comes from the running test's fixtures, so a skipped
    block never builds it."""

    def __init__(self) -> None:
        self.request: pytest.FixtureRequest | None = None
        self.python = PythonEvaluator()

    def _context(self) -> tuple[Workspace, DocIds]:
        assert self.request is not None, "a block runs only inside test_documented_block_runs"
        return self.request.getfixturevalue("docs_workspace"), self.request.getfixturevalue("doc_ids")

    def bash(self, example: Example) -> str | None:
        workspace, ids = self._context()
        where = f"{Path(example.path).name}:{example.line}"
        source = ids.substitute(str(example.parsed), workspace, where)
        proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", source], cwd=workspace.path,
                              env=dvc_env(), capture_output=True, text=True, timeout=600)
        if proc.returncode:
            return (f"exit {proc.returncode} in {workspace.path}:\n{source}\n--- stdout (end)\n"
                    f"{proc.stdout[-3000:]}\n--- stderr (end)\n{proc.stderr[-3000:]}")
        return None

    def run_python(self, example: Example) -> str | None:
        workspace, ids = self._context()
        parsed = example.parsed
        where = f"{Path(example.path).name}:{example.line}"
        example.parsed = Lexeme(ids.substitute(str(parsed), workspace, where), parsed.offset,
                                parsed.line_offset)
        try:
            with contextlib.chdir(workspace.path):
                return self.python(example)
        finally:
            example.parsed = parsed


RUNNER = Runner()
SYBIL = Sybil(parsers=[*(CodeBlockParser(language, RUNNER.bash) for language in SHELLS),
                       CodeBlockParser("python", RUNNER.run_python), SkipParser()])


def is_code(example: Example) -> bool:
    return example.region.evaluator in (RUNNER.bash, RUNNER.run_python)


def blocks(document: Document) -> list[tuple[Example, list[Example]]]:
    """Each code block with the directives (skip) between it and the block before."""
    out, pending = [], []
    for example in document:
        if is_code(example):
            out.append((example, pending))
            pending = []
        else:
            pending.append(example)
    return out


DOCUMENTS = [SYBIL.parse(path) for path in DOCS]
BLOCKS = [block for document in DOCUMENTS for block in blocks(document)]


def block_id(block: tuple[Example, list[Example]]) -> str:
    return f"{Path(block[0].path).relative_to(ROOT)}:{block[0].line}"


@pytest.fixture(scope="module")
def docs_workspace(tmp_path_factory) -> Workspace:
    """A small trained checkout (see the module docstring); built once."""
    repo = make_dvc_repo(tmp_path_factory.mktemp("docs"), STAGES, WORKSPACE_PARAMS)
    pipeline = yaml.safe_load((repo / "dvc.yaml").read_text(encoding="utf-8"))
    project = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))
    pipeline.update({key: value for key, value in project.items() if key != "stages"})  # plots
    (repo / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")
    for name in ("config", "config.local", "plots"):  # the DVC config a checkout has (plots templates)
        src = ROOT / ".dvc" / name
        if src.is_dir():
            shutil.copytree(src, repo / ".dvc" / name)
        elif src.is_file():
            shutil.copy(src, repo / ".dvc" / name)
    shutil.copytree(ROOT / "plots", repo / "plots", ignore=shutil.ignore_patterns("node_modules"))
    (repo / ".venv").symlink_to(sys.prefix)  # `. .venv/bin/activate`, as in a checkout; not committed
    with (repo / ".git" / "info" / "exclude").open("a") as exclude:
        exclude.write("/.venv\n")
    run_dvc(repo, "repro")
    env = dvc_env()
    for cmd in (["git", "add", "-A"], ["git", "commit", "-qm", "reproduced"],
                ["git", "branch", "-M", "main"]):
        subprocess.run(cmd, cwd=repo, env=env, check=True, capture_output=True)
    from test_recommend import write_new_items

    with tempfile.TemporaryDirectory() as tmp:
        write_new_items(repo, Path(tmp), topics=[0, 3], per_topic=1)
        shutil.move(Path(tmp) / "new.csv", repo / "new.csv")
        shutil.move(Path(tmp) / "covers", repo / "new_covers")
    users = (pl.read_parquet(repo / "data/split/users.parquet").filter(pl.col(schema.IS_TEST_USER))
             .sort(schema.N_TRAIN, schema.USER_ID, descending=[True, False]))
    items = (pl.read_parquet(repo / "data/split/items.parquet").filter(pl.col(schema.N_TRAIN) > 0)
             .sort(schema.N_TRAIN, schema.ITEM_ID, descending=[True, False]))
    return Workspace(repo, users[schema.USER_ID].to_list(), items[schema.ITEM_ID].to_list())


@pytest.fixture(scope="module")
def doc_ids(tmp_path_factory) -> DocIds:
    """The ids of the default data: params.yaml's synthetic preset, seed and overrides, generated."""
    from pixrec.data.synthetic import SyntheticConfig, generate

    data = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))["data"]
    assert data["source"] == "synthetic", "the docs' ids are checked against the built-in data"
    out = tmp_path_factory.mktemp("default_data") / "raw"
    generate(SyntheticConfig.from_preset(data["preset"], seed=data["seed"], **(data["synthetic"] or {})), out)
    users = pl.read_csv(out / schema.RAW_INTERACTIONS, infer_schema=False)[schema.USER_ID]
    items = pl.read_csv(out / schema.RAW_ITEMS, infer_schema=False)[schema.ITEM_ID]
    return DocIds(set(users.to_list()), set(items.to_list()))


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS, ids=block_id)
def test_documented_block_runs(block, request):
    code, directives = block
    RUNNER.request = request
    try:
        for directive in directives:
            directive.evaluate()
        code.evaluate()
    except unittest.SkipTest as skip:  # the block is under `skip: next "why"`: say where and why
        pytest.skip(f"{block_id(block)}: {skip}")
    finally:
        RUNNER.request = None


def test_every_skip_says_why():
    """A skipped block carries its reason in the Markdown (`<!-- skip: next "why" -->`)."""
    for document in DOCUMENTS:
        for example in document:
            if not is_code(example):
                action, reason = example.parsed
                where = f"{document.path}:{example.line}"
                assert action == "end" or reason, f"{where}: skip without a reason"
                if reason:
                    assert isinstance(ast.literal_eval(reason), str), f"{where}: quote the reason"


def test_sybil_sees_every_fenced_block_it_should_run():
    """Guard on the parser: every ```bash/sh/shell/python fence of the docs is a block here."""
    fence = re.compile(rf"^```({'|'.join((*SHELLS, 'python'))})\s*$", re.M)
    for path, document in zip(DOCS, DOCUMENTS, strict=True):
        found = sum(1 for example in document if is_code(example))
        assert found == len(fence.findall(path.read_text(encoding="utf-8"))), path
