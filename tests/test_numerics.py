"""Stages pin the CPU kernel paths before numpy or torch load, and record them with the versions."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pixrec.numerics import CPU_KERNELS, _has_avx2, environment

# what a stage process sees once ``stages`` is imported: the settings and the kernels numpy took
PROBE = """
import json, os
import stages, numpy
from threadpoolctl import threadpool_info
from numpy._core._multiarray_umath import __cpu_features__
blas = [i.get("architecture") for i in threadpool_info() if i["internal_api"] == "openblas"]
print(json.dumps({"env": {k: os.environ.get(k) for k in %r}, "openblas": blas,
                  "avx512": __cpu_features__.get("X86_V4", False)}))
"""


def _probe(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in CPU_KERNELS and k != "PIXREC_CPU_KERNELS"}
    proc = subprocess.run([sys.executable, "-c", PROBE % (list(CPU_KERNELS),)], env={**clean, **env},
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


@pytest.mark.skipif(not _has_avx2(), reason="kernels are pinned on x86-64 CPUs with AVX2 only")
def test_a_stage_process_runs_the_pinned_kernels():
    seen = _probe()
    assert seen["env"] == CPU_KERNELS
    assert seen["openblas"] == ["Haswell"] and seen["avx512"] is False
    # a value the user set wins, and native pins nothing
    assert _probe(MKL_CBWR="AVX2")["env"]["MKL_CBWR"] == "AVX2"
    assert set(_probe(PIXREC_CPU_KERNELS="native")["env"].values()) == {None}


def test_environment_records_versions_and_kernels():
    env = environment()
    assert {"python", "torch", "numpy", "scipy", "transformers", "sentence-transformers", "pillow"} <= set(
        env["versions"])
    assert set(env["cpu_kernels"]) == set(CPU_KERNELS)
