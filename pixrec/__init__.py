"""pixrec: reproducible multimodal image recommendation on PixelRec, built on DVC."""

import importlib

__version__ = "0.1.0"


def load(workspace="."):
    """The trained workspace at ``workspace``: see :mod:`pixrec.serve.api`.

    The serving stack is imported by name on first use: every stage imports this package, and none
    of them runs (or should be re-run by a change to) the serving code.
    """
    return importlib.import_module("pixrec.serve").load(workspace)
