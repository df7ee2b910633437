"""params.yaml is the one home of every setting: each DVC stage reads exactly the keys its dvc.yaml
``params:`` declares (no more: a change to an undeclared key would not re-run it; no less: a declared
key it ignores re-runs it for nothing), every section it reads is consumed by a typed config that
rejects unknown keys, and a bad value is one line naming the key, the expected type and the value."""

from __future__ import annotations

import copy
import importlib
import itertools
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from dvc_repo import ROOT, _apply, dvc_env
from real_params import real_params

from pixrec.config import ConfigError
from pixrec.errors import InputError
from stages._params import declared, fail_cleanly, read_params

PIPELINE = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def _resolve(value: Any) -> Any:
    """dvc.yaml's ``${dotted.key}`` (a whole value) -> that value in params.yaml."""
    match = re.fullmatch(r"\$\{([\w.]+)\}", str(value))
    if not match:
        return value
    node: Any = real_params()
    for part in match.group(1).split("."):
        node = node[part]
    return node


def _cells(stage: dict) -> list[dict[str, str]]:
    """One item per DVC matrix cell (``{}`` for a plain stage), plus the model the command names
    (``--model fusion`` or ``--model ${models.headline}``)."""
    matrix = {k: _resolve(v) for k, v in stage.get("matrix", {}).items()}
    named = re.search(r"--model ([^\s/]+)(?=\s|$)", stage["cmd"])
    fixed = {"model": _resolve(named.group(1))} if named and "model" not in matrix else {}
    return [dict(zip(matrix, combo, strict=True)) | fixed for combo in itertools.product(*matrix.values())]


def _cases() -> list[tuple[str, dict[str, str]]]:
    return [(name, item) for name, stage in PIPELINE.items() for item in _cells(stage)]


def _module(name: str):
    return importlib.import_module(PIPELINE[name]["cmd"].split()[2])  # python -m stages.<module>


def _declared_in_dvc_yaml(name: str, item: dict[str, str]) -> set[str]:
    keys = set()
    for entry in PIPELINE[name].get("params", []):
        assert isinstance(entry, str), f"{name}: params from another file: {entry!r}"
        entry = re.sub(r"\$\{item\.(\w+)\}", lambda m: item[m.group(1)], entry)
        keys.add(re.sub(r"\$\{[\w.]+\}", lambda m: str(_resolve(m.group(0))), entry))
    return keys


def _id(case: tuple[str, dict[str, str]]) -> str:
    name, item = case
    return name + ("@" + "-".join(item.values()) if item else "")


@pytest.mark.parametrize("case", _cases(), ids=_id)
def test_stage_reads_exactly_the_params_dvc_yaml_declares(case):
    name, item = case
    module = _module(name)
    assert set(declared(module.PARAMS, **item)) == _declared_in_dvc_yaml(name, item)
    # reads every declared key into typed configs, and no other (read_params checks both)
    module.load_params(ROOT / "params.yaml", **item)


def _mappings(value: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Paths of every mapping inside ``value`` (itself included)."""
    if not isinstance(value, dict):
        return []
    return [path] + [p for k, v in value.items() for p in _mappings(v, (*path, k))]


def _typo_cases() -> list[tuple[str, dict[str, str], str]]:
    """(stage, cell, dotted key of a mapping it reads) for every mapping any stage reads."""
    out = []
    for name, item in _cases():
        for key in declared(_module(name).PARAMS, **item):
            node: Any = real_params()
            for part in key.split("."):
                node = node[part]
            out += [(name, item, ".".join((key, *sub))) for sub in _mappings(node)]
    return out


@pytest.mark.parametrize("case", _typo_cases(), ids=lambda c: f"{_id(c[:2])}:{c[2]}")
def test_an_unknown_key_in_any_section_a_stage_reads_is_an_error(case, tmp_path):
    name, item, key = case
    params = _apply(real_params(), {f"{key}.bogus_key": 1})
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError, match=r"(?=.*bogus_key)(?=.*unknown key)"):
        _module(name).load_params(path, **item)


def _cell(stage: str, key: str) -> dict[str, str]:
    """The matrix cell of ``stage`` that reads ``key`` (train@two_tower for a two_tower.* key)."""
    cells = _cells(PIPELINE[stage])
    return next((c for c in cells if key.split(".")[0] in c.values()), cells[0])


def _load(tmp_path: Path, stage: str, overrides: dict[str, Any]):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(_apply(real_params(), overrides)))
    return _module(stage).load_params(path, **_cell(stage, next(iter(overrides))))


def _without(key: str) -> dict[str, Any]:
    params = real_params()
    *parents, last = key.split(".")
    node = params
    for part in parents:
        node = node[part]
    del node[last]
    return params


def test_values_are_typed_at_load(tmp_path):
    # YAML 1.1 reads 3e-4 as the string '3e-4': it reaches the optimiser as a float
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text().replace(
        "    lr: 0.005", "    lr: 3e-4"))
    assert yaml.safe_load((tmp_path / "params.yaml").read_text())["fusion"]["train"]["lr"] == "3e-4"
    _, section = _module("train").load_params(tmp_path / "params.yaml", model="fusion")
    assert section.train.lr == 3e-4 and type(section.train.lr) is float
    split = _load(tmp_path, "split", {"split.min_user_interactions": "3"})
    assert split.min_user_interactions == 3 and type(split.min_user_interactions) is int
    assert _load(tmp_path, "negative-sample", {"negatives.per_positive": 2.0}).per_positive == 2


@pytest.mark.parametrize(("stage", "overrides", "message"), [
    ("train", {"fusion.train.lr": "abc"},
     "params.yaml: fusion.train.lr: expected a number, got 'abc'"),
    ("train", {"two_tower.model.tokens": ["item", "smell"]},
     r"two_tower.model.tokens: unknown \['smell'\]"),
    ("ablate", {"ablate.cells.full": {"lossy": "bce"}}, "ablate.cells.full.lossy: unknown key"),
    ("negative-sample", {"negatives.per_positive": "abc"},
     "params.yaml: negatives.per_positive: expected an integer, got 'abc'"),
    ("negative-sample", {"negatives.per_positive": 2.5},
     "params.yaml: negatives.per_positive: expected an integer, got 2.5"),
    ("split", {"split.min_user_interactions": "three"},
     "params.yaml: split.min_user_interactions: expected an integer, got 'three'"),
    ("tune", {"baselines.names": "random"}, "params.yaml: baselines.names: expected a list, got 'random'"),
    ("tune", {"baselines.knobs.item_knn.k": [10, "many"]},
     "params.yaml: baselines.knobs.item_knn.k: expected an integer, got 'many'"),
    ("tune", {"baselines.names": ["random", "nearest"]},
     r"params.yaml: baselines.names: unknown baseline 'nearest'; valid names are \['als'"),
    ("two-stage", {"eval.two_stage_retrievers.item_knn.k": "fifty"},
     "params.yaml: eval.two_stage_retrievers.item_knn.k: expected an integer, got 'fifty'"),
    ("evaluate", {"eval.intervals.level": "high"}, "params.yaml: eval.intervals.level: expected a number"),
    ("evaluate", {"eval.ks": [5, "ten"]}, r"params.yaml: eval.ks\[1\]: expected an integer, got 'ten'"),
    ("train", {"fusion.model.dim": 30, "fusion.model.heads": 4},
     "divisible by heads, got dim=30 heads=4"),
    ("download", {"data.url.covers_sha256": "abc"}, "data.url.covers_sha256: 'abc' is not a sha256"),
    ("ablate-summary", {"ablate.variants": "full"}, r"ablate.variants: expected list\[str\], got 'full'"),
])
def test_a_bad_value_is_one_line_naming_the_key(tmp_path, stage, overrides, message):
    with pytest.raises(ConfigError, match=message) as err:
        _load(tmp_path, stage, overrides)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("stage", "key"), [
    ("train", "fusion.train.lr"), ("train", "two_tower.select.cold_offset"),
    ("evaluate", "eval.seed"), ("evaluate", "eval.rerank"), ("evaluate", "eval.intervals"),
    ("evaluate", "eval.intervals.level"), ("tune", "baselines.knobs"), ("tune", "baselines.knobs.ease.lam"),
    ("embed-text", "encoders.text.max_length"), ("download", "data.url.items")])
def test_a_missing_key_is_an_error_naming_it(tmp_path, stage, key):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(_without(key)))
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: {re.escape(key)} is missing$"):
        _module(stage).load_params(path, **_cell(stage, key))


def test_read_params_hands_out_declared_keys_only_and_checks_each_is_read(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(real_params()))
    with pytest.raises(KeyError, match="not in this stage's PARAMS"), read_params(path, ["split"]) as p:
        p.raw("fusion")
    with pytest.raises(AssertionError, match=r"never read: \['fusion'\]"), \
            read_params(path, ["split", "fusion"]) as p:
        p.raw("split")
    (tmp_path / "no_eval.yaml").write_text(yaml.safe_dump(_without("eval")))
    with pytest.raises(ConfigError, match=r"no_eval\.yaml: eval is missing"):
        read_params(tmp_path / "no_eval.yaml", ["eval"]).__enter__()
    # a stage-fixed field may not shadow a declared one
    with pytest.raises(KeyError, match="both declared and fixed"), \
            read_params(path, ["eval.ks", "eval.seed"]) as p:
        from pixrec.evaluation.config import EvalConfig

        p.section(EvalConfig, "eval", ks=[1])


def test_fail_cleanly_prints_input_errors_and_keeps_bugs_tracebacks(capsys):
    @fail_cleanly
    def bad_input():
        raise ConfigError("params.yaml: train.lr: expected a number, got 'abc'")

    with pytest.raises(SystemExit) as exit_:
        bad_input()
    assert exit_.value.code == 1
    assert capsys.readouterr().err == "error: params.yaml: train.lr: expected a number, got 'abc'\n"

    @fail_cleanly
    def bug():
        return np.zeros(3).reshape(2)  # a ValueError from inside numpy is a bug, not bad input

    with pytest.raises(ValueError, match="cannot reshape") as err:
        bug()
    assert not isinstance(err.value, InputError)


def _run(module: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**dvc_env(), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_a_stage_with_a_bad_param_prints_one_line(tmp_path, tiny_raw):
    params = copy.deepcopy(real_params())
    params["split"]["min_user_interactions"] = "three"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = _run("stages.split", tmp_path, "--raw", str(tiny_raw), "--out", "split")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr == ("error: params.yaml: split.min_user_interactions: expected an integer, "
                           "got 'three'\n")
    assert not (tmp_path / "split").exists()


def test_a_stage_with_a_missing_input_prints_one_line(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(real_params()))
    proc = _run("stages.ablate_summary", tmp_path, "--cells", "nowhere")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    variants = real_params()["ablate"]["variants"]
    assert proc.stderr == f"error: nowhere: no result for variant(s) {variants}; run `dvc repro ablate`\n"


def test_a_yaml_syntax_error_is_one_line_naming_file_line_and_column(tmp_path):
    """A stray quote or tab in params.yaml: the stage names where, it does not print yaml's traceback."""
    text = (ROOT / "params.yaml").read_text(encoding="utf-8")
    broken = text.replace("  headline: two_tower", '  headline: "two_tower', 1)
    assert broken != text
    (tmp_path / "params.yaml").write_text(broken, encoding="utf-8")
    # models: {fit, headline}, the block where yaml gave up
    block = broken[:broken.index("\n  fit:") + 1].count("\n") + 1
    proc = _run("stages.headline", tmp_path, "--evaluate", "nowhere.json")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: params.yaml: invalid YAML at line ")
    assert proc.stderr.count("\n") == 1
    assert f"while parsing a block mapping that starts at line {block}, column 3" in proc.stderr, proc.stderr
    (tmp_path / "tab.yaml").write_text("split:\n\tseed: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"tab\.yaml: invalid YAML at line 2, column 1: "):
        read_params(tmp_path / "tab.yaml", ["split"]).__enter__()


@pytest.mark.parametrize("stage", ["evaluate", "headline", "recommend", "report", "ablate-summary",
                                   "ablate", "ablate-encoders"])
def test_a_headline_outside_models_fit_names_both_keys(tmp_path, stage):
    """``models.headline: sasrec`` (a baseline, so no section of that name): every stage that leads with
    the headline says which key is wrong, not that a section ``sasrec`` is missing."""
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(_apply(real_params(), {"models.headline": "sasrec"})))
    item = _cells(PIPELINE[stage])[0]
    if "model" in item:  # dvc.yaml fills --model from ${models.headline}
        item = {**item, "model": "sasrec"}
    fit = real_params()["models"]["fit"]
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: models\.headline 'sasrec' is not in "
                                          rf"models\.fit {re.escape(str(fit))}$"):
        _module(stage).load_params(path, **item)


def test_a_headline_outside_models_fit_stops_the_stage_in_one_line(tmp_path):
    params = _apply(real_params(), {"models.headline": "sasrec"})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = _run("stages.ablate", tmp_path, "--model", "sasrec", "--variant", params["ablate"]["variants"][0])
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr == (f"error: params.yaml: models.headline 'sasrec' is not in models.fit "
                           f"{params['models']['fit']}\n")


@pytest.mark.parametrize(("key", "value"), [("two_tower.train.batch_size", 0), ("fusion.train.epochs", 0),
                                            ("two_tower.train.nproc", -1), ("fusion.train.val_users", 0)])
def test_a_train_count_below_one_names_the_section_and_the_key(tmp_path, key, value):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, "train", {key: value})
    assert str(err.value) == f"{tmp_path / 'params.yaml'}: {key} must be >= 1, got {value}"
