"""pixrec: reproducible multimodal image recommendation on PixelRec, built on DVC."""

__version__ = "0.1.0"


def load(workspace="."):
    """The trained workspace at ``workspace``: see :mod:`pixrec.serve.api` (imported on first use)."""
    from pixrec.serve import load as _load

    return _load(workspace)
