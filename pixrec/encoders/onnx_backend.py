"""ONNX Runtime backends of the text encoders (``encoders.text.backend``): ``onnx`` and ``onnx-int8``.

The torch module a text encoder runs (transformer + pooling + normalisation, loaded from the packaged
or the user's files) is exported to ONNX at run time, offline, into a temporary directory, checked
against torch on a probe batch, optionally quantised, and run by ONNX Runtime on the CPU (the graph
is then kept for later runs, :mod:`.onnx_cache`):

- ``onnx``: the same fp32 graph; ORT's fused CPU kernels run it ~2x faster than eager torch, and the
  vectors differ from torch's by float rounding only (cosine 1.0000);
- ``onnx-int8``: dynamic quantisation (``quantize_dynamic``: weights int8 per output channel,
  activations uint8 per batch); faster again, cosine to fp32 ~0.99 (see ``pixrec bench``).

Why not sentence-transformers' own ONNX backend: it needs optimum-onnx, whose releases pin
transformers < 4.58 (this project runs transformers 5). Same params give the same bytes on one
machine: the thread count is fixed, the graph is traced from the same weights, and ORT's CPU kernels
gave identical bytes with 1 and 2 threads.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pixrec.encoders.onnx_cache import session
from pixrec.errors import InputError

OPSET = 17
PROBE_TOL = 1e-4  # max |ORT fp32 - torch| on the probe batch; a wrong trace is far off, rounding is ~1e-7


class _Positional(nn.Module):
    """Positional tensors -> ``forward(dict)``: the exporter traces positional inputs."""

    def __init__(self, model: nn.Module, forward: Callable[[dict], torch.Tensor], names: tuple[str, ...]):
        super().__init__()
        self.model, self._forward, self.names = model, forward, names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self._forward(dict(zip(self.names, tensors, strict=True)))


def _export(model: nn.Module, forward: Callable[[dict], torch.Tensor], probe: Mapping[str, torch.Tensor],
            path: Path) -> None:
    """Trace ``forward`` (dict of int64 (B, T) -> float32 (B, dim)) to ``path``, batch and length dynamic."""
    names = tuple(probe)
    axes = {name: {0: "batch", 1: "tokens"} for name in names} | {"embedding": {0: "batch"}}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python branches
        torch.onnx.export(_Positional(model, forward, names).eval(), tuple(probe.values()), str(path),
                          dynamo=False, input_names=list(names), output_names=["embedding"],
                          dynamic_axes=axes, opset_version=OPSET)


class OnnxModel:
    """A text model's ``forward`` exported to ONNX and run by ONNX Runtime (CPU) with ``threads`` threads.

    ``probe``: a tokenized batch with padding (texts of different lengths), used to trace the graph
    and to check it against torch before anything is encoded.
    """

    def __init__(self, model: nn.Module, forward: Callable[[dict], torch.Tensor],
                 probe: Mapping[str, torch.Tensor], int8: bool, threads: int, where: str) -> None:
        self.threads = threads
        # kept while this object lives: :attr:`path` is the graph it runs (onnx_cache stores it)
        self._dir = tempfile.TemporaryDirectory(prefix="pixrec-onnx-")
        self.path = Path(self._dir.name) / "model.onnx"
        _export(model, forward, probe, self.path)
        self.session = session(self.path, threads)
        with torch.inference_mode():
            expected = forward(dict(probe)).float().numpy()
        self.names = [i.name for i in self.session.get_inputs()]
        err = float(np.abs(self(probe) - expected).max())
        if not err <= PROBE_TOL:
            raise RuntimeError(f"{where}: the ONNX export differs from the torch model by {err:.2e} on "
                               "the probe batch; use backend: torch and report this model")
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantized = self.path.with_name("model.int8.onnx")
            quantize_dynamic(self.path, quantized, weight_type=QuantType.QInt8, per_channel=True)
            self.path, self.session = quantized, session(quantized, threads)

    def __call__(self, batch: Mapping[str, torch.Tensor]) -> np.ndarray:
        """Tokenized batch (int64 (B, T) each) -> float32 (B, dim)."""
        feeds = {name: np.asarray(batch[name], dtype=np.int64) for name in self.names}
        return self.session.run(None, feeds)[0].astype(np.float32, copy=False)


def check_backend(backend: str, device: str, where: str) -> str:
    """The device a backend runs on: ONNX Runtime here is the CPU package (``auto`` -> cpu)."""
    if not backend.startswith("onnx"):
        return device
    if device == "cuda":
        raise InputError(f"{where}.backend: {backend} runs on the CPU (onnxruntime); set device: auto or "
                         "cpu, or backend: torch to use CUDA")
    return "cpu"


def ort_version() -> str:
    from importlib.metadata import version

    return version("onnxruntime")


__all__ = ["OnnxModel", "check_backend", "ort_version"]
