"""Using what was trained: the recommend stage's lists, the Python API (:func:`load`) and the commands
``pixrec recommend --user``, ``pixrec similar`` and ``pixrec score-new`` built on it."""

from pixrec.serve.api import Paths, Pixrec, load

__all__ = ["Paths", "Pixrec", "load"]
