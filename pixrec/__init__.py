"""pixrec: reproducible multimodal image recommendation on PixelRec, built on DVC."""

__version__ = "0.1.0"
