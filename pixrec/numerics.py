"""What a stage's numbers depend on beyond its inputs and params: library versions and the CPU
kernel paths of torch (ATen, MKL, oneDNN) and numpy (its own SIMD loops, OpenBLAS).

The same params give the same bytes on one machine; across x86 machines they do only if every
library runs the same kernels. Left to themselves the libraries pick kernels by CPU: ATen and numpy
use AVX-512 code where the CPU has it, MKL has separate Intel (AVX2, AVX-512) and AMD paths with
different blocking and summation order, oneDNN JIT-compiles for the best ISA, and OpenBLAS picks a
core type. :data:`CPU_KERNELS` pins each to a path every x86-64 CPU of the last decade runs the same
way (AVX2 and FMA, or MKL's SSE2 path); :func:`pin_cpu_kernels` sets them (unless already set)
before torch or numpy load, at stage entry (``stages/__init__.py``) and in the tests. On a CPU without
AVX2 (or not x86) nothing is pinned. Measured cost and what was shown: docs/reproducibility.md,
"Reproducing `dvc.lock` on another machine".
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version

# environment variable -> value; read by each library when it loads (numpy, OpenBLAS) or first runs
# a kernel (ATen, MKL, oneDNN), so they must be set before the first import of numpy or torch
CPU_KERNELS = {
    "ATEN_CPU_CAPABILITY": "avx2",  # ATen's vectorised ops (GELU, softmax, layer norm): the AVX2 build
    "MKL_CBWR": "COMPATIBLE",  # MKL's one code path documented to agree on Intel and AMD CPUs (SSE2)
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN's JIT kernels (torch's GELU) compiled for AVX2 at most
    "OPENBLAS_CORETYPE": "Haswell",  # numpy/scipy's OpenBLAS: its AVX2 kernels and blocking
    # numpy's AVX-512 loops (its SVML-derived float maths differ from the AVX2 ones by a few ulp);
    # disabling a feature the CPU lacks is a no-op, an unknown name only an ImportWarning
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
}

# the packages whose release can move a stage's numbers (installed ones are recorded)
PACKAGES = ("torch", "torchvision", "numpy", "scipy", "transformers", "sentence-transformers", "tokenizers",
            "pillow", "faiss-cpu", "implicit", "polars", "pyarrow", "open_clip_torch", "timm")


def pin_cpu_kernels() -> None:
    """Set :data:`CPU_KERNELS` in this process's environment (a value already set wins: a user who
    exports e.g. ``ATEN_CPU_CAPABILITY=avx512`` gets that, and it is recorded by :func:`environment`).

    ``PIXREC_CPU_KERNELS=native`` pins nothing: each library takes its fastest path for this CPU
    (MKL's SSE2 path makes fp32 matmul ~4x slower), and outputs hash differently across CPUs.
    """
    if os.environ.get("PIXREC_CPU_KERNELS") == "native" or not _has_avx2():  # AVX2 forced there: SIGILL
        return
    for name, value in CPU_KERNELS.items():
        os.environ.setdefault(name, value)


def _has_avx2() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return {"avx2", "fma"} <= flags
    except OSError:
        pass
    return False


def versions() -> dict[str, str]:
    """``{package: version}`` of Python and of the installed :data:`PACKAGES`."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def environment() -> dict[str, dict[str, str | None]]:
    """For a stage's meta: the resolved :data:`PACKAGES` versions and the CPU kernel settings in force."""
    return {"versions": versions(), "cpu_kernels": {k: os.environ.get(k) for k in CPU_KERNELS}}


@contextlib.contextmanager
def deterministic_kernels() -> Iterator[None]:
    """torch's deterministic kernels within the block (training: CPU ``index_put_(accumulate=True)``,
    the backward of an embedding gather, adds with parallel atomics otherwise: run-to-run differences
    of 1e-4 in NDCG after a few epochs), without their NaN-filling of every fresh tensor — a
    debugging aid (no kernel here reads memory it did not write) that costs ~14% of a two-tower step
    in ``fill_`` calls. Both settings are restored on exit."""
    import torch

    flags = torch.utils.deterministic
    det, filling = torch.are_deterministic_algorithms_enabled(), flags.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True)
    flags.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(det)
        flags.fill_uninitialized_memory = filling
