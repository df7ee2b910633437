"""Each dvc.yaml stage lists, as code deps, every project module its command runs (statically: its
imports at any depth, in functions too, and the packages above them) and nothing it does not run.
``python tests/stage_imports.py`` prints the deps each stage should list."""

from __future__ import annotations

import pytest
import yaml
from stage_imports import ROOT, code_deps, problems, stage_entries

STAGES = stage_entries()


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_code_deps_are_what_the_stage_imports(stage):
    entry, deps = STAGES[stage]
    found = problems(entry, deps)
    assert not found, (f"dvc.yaml stage {stage} ({entry}): " + "; ".join(found)
                       + f". Its code deps should be: {code_deps(entry)} (python tests/stage_imports.py)")


def test_a_dep_removed_on_purpose_is_caught(tmp_path):
    """The check sees a module a stage imports that dvc.yaml stops listing (here: the train stage's
    library folder or file that holds the models), and a code dep the stage does not import."""
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))
    name = next(n for n, (entry, _) in STAGES.items() if entry == "stages.train")
    deps = pipeline["stages"][name]["deps"]
    models = next(d for d in deps if d.startswith("pixrec/models"))
    deps.remove(models)
    deps.append("pixrec/report")
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(pipeline), encoding="utf-8")
    entry, broken = stage_entries(tmp_path / "dvc.yaml")[name]
    found = problems(entry, broken)
    assert any(f.startswith("missing: pixrec/models") for f in found), found
    assert "not imported: pixrec/report" in found


def test_suggested_deps_pass_the_check():
    for entry, _ in STAGES.values():
        assert problems(entry, code_deps(entry)) == []


def test_bytecode_caches_are_not_part_of_a_folder_dep():
    """A folder dep such as pixrec/models hashes its sources only: Python writes __pycache__/ beside
    them whenever anything imports the package (tests, pixrec commands), which must not make `dvc
    status` call the stages changed."""
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        ignore = repo.dvcignore
        assert ignore.is_ignored_dir(str(ROOT / "pixrec" / "models" / "__pycache__"))
        assert ignore.is_ignored_file(str(ROOT / "pixrec" / "stray.cpython-311.pyc"))
        assert not ignore.is_ignored_file(str(ROOT / "pixrec" / "models" / "two_tower.py"))
