"""``pixel``: the offline default image encoder. No learned weights, real visual signal.

No PyPI package ships pretrained CLIP / DINO / ResNet weights, so the default must carry visual
signal without them. Each cover is decoded straight to a min(image_size, 64) px square (JPEG draft
mode makes that cheap; the features need no more) and described in CIELAB (roughly perceptually
uniform, so Euclidean distances mean something):

- ``thumbnail``    8x8 Lab thumbnail (layout and colour), 192 dims;
- ``colour_hist``  joint Lab histogram, 4 L x 5 a x 5 b bins, square-rooted (Hellinger), 100 dims;
- ``edge_hist``    magnitude-weighted edge-orientation histogram of L (8 bins) in 2x2 cells, plus
  each cell's edge density (texture, stripes, busy vs flat), 36 dims;
- ``colour_stats`` mean and standard deviation of L, a, b (brightness, tint, contrast), 6 dims.

:meth:`PixelEncoder.finalize` standardises every dimension and weights each block to equal total
variance, then projects on the top ``pca_dim`` principal axes. Mean, scale and axes are fitted on
*training* items only (cold items never shape the basis), with a deterministic SVD and a sign
convention, so the same covers give byte-identical output.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
import torch.nn.functional as F

from pixrec.encoders.base import FITTED_KEY, IMAGE_ENCODERS, ImageEncoder, ImageEncoderConfig, Preprocess
from pixrec.encoders.weights import WeightsSource
from pixrec.errors import InputError

log = logging.getLogger("pixrec.encoders")

THUMB = 8
L_BINS, AB_BINS = 4, 5
AB_EDGES = (-0.25, -0.08, 0.08, 0.25)  # a/128, b/128: strong -, weak -, neutral, weak +, strong +
ORIENT_BINS, CELLS = 8, 2
GRID = 64  # working resolution: covers are decoded at min(image_size, GRID) px

# linear sRGB -> XYZ (D65), rows X, Y, Z; divided by the D65 white point
_RGB2XYZ = torch.tensor([[0.4124564, 0.3575761, 0.1804375],
                         [0.2126729, 0.7151522, 0.0721750],
                         [0.0193339, 0.1191920, 0.9503041]], dtype=torch.float32)
_WHITE = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float32)
_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0


def linear_to_lab(lin: torch.Tensor) -> torch.Tensor:
    """linear RGB (B, 3, H, W) -> Lab (B, 3, H, W): L/100 in [0, 1], a/128, b/128."""
    xyz = torch.einsum("ij,bjhw->bihw", _RGB2XYZ, lin) / _WHITE.view(1, 3, 1, 1)
    eps = (6.0 / 29.0) ** 3
    f = torch.where(xyz > eps, xyz.clamp_min(eps) ** (1.0 / 3.0), xyz / (3 * (6.0 / 29.0) ** 2) + 4.0 / 29.0)
    L = (116.0 * f[:, 1] - 16.0) / 100.0
    a = 500.0 * (f[:, 0] - f[:, 1]) / 128.0
    b = 200.0 * (f[:, 1] - f[:, 2]) / 128.0
    return torch.stack([L, a, b], dim=1)


@IMAGE_ENCODERS.register("pixel")
class PixelEncoder(ImageEncoder):
    """Deterministic hand-made features (see module docstring); needs no weights."""

    def __init__(self, config: ImageEncoderConfig, cache_dir=None) -> None:
        if config.weights is not None:
            raise InputError("encoders.image.weights: the pixel encoder has no weights; set it to null")
        if config.arch not in (None, "pixel"):
            raise InputError(f"encoders.image.arch: the pixel encoder has no architectures, got "
                             f"{config.arch!r}; set it to null")
        self.name, self.arch = "pixel", None
        self.pca_dim = config.pca_dim
        self.source = WeightsSource("none", "none")
        # Features need no more than GRID px: decoding at that size lets JPEG draft mode skip most
        # of the work. Squash, not crop: the whole cover counts. No normalisation (Lab features).
        self.grid = min(GRID, config.image_size) // (2 * CELLS) * (2 * CELLS)
        self.preprocess = Preprocess(size=self.grid, resize=self.grid, mode="squash",
                                     interpolation="bilinear", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
        self.blocks = {
            "thumbnail": 3 * THUMB * THUMB,
            "colour_hist": L_BINS * AB_BINS * AB_BINS,
            "edge_hist": CELLS * CELLS * (ORIENT_BINS + 1),
            "colour_stats": 6,
        }
        self.raw_dim = sum(self.blocks.values())
        self._ab_edges = torch.tensor(AB_EDGES)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 3, S, S) -> float32 (B, raw_dim): the four blocks, concatenated."""
        B, G = images.shape[0], self.grid
        rgb = images.float().div_(255.0)  # (B, 3, G, G)
        lin = torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
        lab = linear_to_lab(lin)  # (B, 3, G, G)

        thumb = F.adaptive_avg_pool2d(lab, THUMB).flatten(1)  # (B, 192)
        stats = torch.cat([lab.mean(dim=(2, 3)), lab.std(dim=(2, 3))], dim=1)  # (B, 6)

        L_idx = (lab[:, 0] * L_BINS).long().clamp_(0, L_BINS - 1)
        a_idx = torch.bucketize(lab[:, 1].contiguous(), self._ab_edges)
        b_idx = torch.bucketize(lab[:, 2].contiguous(), self._ab_edges)
        nbins = L_BINS * AB_BINS * AB_BINS
        bins = (L_idx * AB_BINS + a_idx) * AB_BINS + b_idx  # (B, G, G)
        bins = bins + torch.arange(B).view(B, 1, 1) * nbins
        counts = torch.bincount(bins.flatten(), minlength=B * nbins).view(B, nbins)  # exact ints
        colour_hist = (counts.float() / (G * G)).sqrt()  # (B, 100)

        Lp = F.pad(lab[:, :1], (1, 1, 1, 1), mode="replicate")
        gx = F.conv2d(Lp, _SOBEL_X.view(1, 1, 3, 3))[:, 0]
        gy = F.conv2d(Lp, _SOBEL_X.t().contiguous().view(1, 1, 3, 3))[:, 0]
        mag = torch.hypot(gx, gy)  # (B, G, G)
        theta = torch.atan2(gy, gx).remainder(math.pi)  # unsigned orientation in [0, pi)
        o_idx = (theta * (ORIENT_BINS / math.pi)).long().clamp_(0, ORIENT_BINS - 1)
        onehot = (o_idx.unsqueeze(-1) == torch.arange(ORIENT_BINS)).float() * mag.unsqueeze(-1)
        c = G // CELLS
        cells = onehot.view(B, CELLS, c, CELLS, c, ORIENT_BINS).sum(dim=(2, 4))  # (B, 2, 2, 8)
        total = cells.sum(-1, keepdim=True)  # (B, 2, 2, 1)
        edge = torch.cat([cells / (total + 1e-6), total / (c * c)], dim=-1).flatten(1)  # (B, 36)

        return torch.cat([thumb, colour_hist, edge, stats], dim=1)

    def finalize(
        self, vectors: np.ndarray, usable: np.ndarray, fit: np.ndarray
    ) -> tuple[np.ndarray, dict]:
        """Standardise, weight blocks, PCA: all fitted on ``fit`` rows (training items with a cover).
        The fitted mean, scale, block weights and axes go in the metadata's ``fitted`` entry (saved
        beside the vectors), so :meth:`apply_fitted` maps covers seen later the same way."""
        n_fit = int(fit.sum())
        if not usable.any():  # a text-only dataset: every item masked (and counted by the caller)
            dim = self.pca_dim or self.raw_dim
            return np.zeros((len(vectors), dim), dtype=np.float32), {
                "raw_dim": self.raw_dim, "blocks": dict(self.blocks), "n_fit": 0, "grid": self.grid,
                "pca_dim": self.pca_dim, "note": "no usable cover: nothing to fit, every item masked"}
        if n_fit < 2:
            raise InputError(f"pixel encoder: needs >= 2 training items (n_train > 0) with a usable cover "
                             f"to fit its scaling and PCA, found {n_fit} (of {int(usable.sum())} usable "
                             "covers); add covers or set encoders.image.name to a pretrained encoder")
        X = vectors.astype(np.float64)
        std = X[fit].std(axis=0)
        std[std < 1e-8] = 1.0  # constant on training items: centre only
        fitted = {"mean": X[fit].mean(axis=0), "std": std,
                  "weights": np.concatenate([np.full(d, 1.0 / math.sqrt(d)) for d in self.blocks.values()])}
        meta: dict = {"raw_dim": self.raw_dim, "blocks": dict(self.blocks), "n_fit": n_fit,
                      "grid": self.grid}
        if self.pca_dim == 0:
            meta["pca_dim"] = 0
        else:
            from threadpoolctl import threadpool_limits

            # one BLAS thread: this thin SVD is tiny work, and multi-threaded OpenBLAS measured 15-100x
            # slower for it on 2 loaded cores (0.09 s vs 1.3-8.7 s); also independent of the core count
            with threadpool_limits(limits=1, user_api="blas"):
                _, s, vt = np.linalg.svd(_standardise(X[fit], fitted), full_matrices=False)  # (k, raw_dim)
            k = min(self.pca_dim, vt.shape[0])
            if k < self.pca_dim:
                log.warning("pixel encoder: pca_dim %d > %d available axes (%d training covers); "
                            "using %d", self.pca_dim, vt.shape[0], n_fit, k)
            comps = vt[:k]
            pivot = np.abs(comps).argmax(axis=1)
            fitted["components"] = comps * np.sign(comps[np.arange(k), pivot])[:, None]  # deterministic signs
            var = s**2
            meta |= {"pca_dim": k, "explained_variance_ratio": float(var[:k].sum() / var.sum())}
        out = self.apply_fitted(vectors, fitted)
        out[~usable] = 0.0
        return out, {**meta, FITTED_KEY: fitted}

    def apply_fitted(self, vectors: np.ndarray, fitted: dict[str, np.ndarray]) -> np.ndarray:
        """Raw features (n, raw_dim) -> float32 (n, dim) by the scaling and PCA :meth:`finalize` fitted."""
        if not fitted:  # nothing was fitted: no training cover, every item masked
            return np.zeros((len(vectors), self.pca_dim or self.raw_dim), dtype=np.float32)
        Z = _standardise(vectors.astype(np.float64), fitted)  # (n, raw_dim)
        out = Z @ fitted["components"].T if "components" in fitted else Z
        return out.astype(np.float32)


def _standardise(X: np.ndarray, fitted: dict[str, np.ndarray]) -> np.ndarray:
    """(n, raw_dim) float64 -> centred, scaled, block-weighted (n, raw_dim)."""
    return (X - fitted["mean"]) / fitted["std"] * fitted["weights"]


__all__ = ["PixelEncoder", "linear_to_lab"]
