"""Every baseline, registered under the name ``params.yaml`` uses.

Each baseline module registers its classes in :data:`pixrec.baselines.base.BASELINES` when it is
imported; this module imports them all. Code that names baselines (typing knobs, checking names,
fitting by name) imports it once, for that side effect; code that only needs the interface
(:class:`~pixrec.baselines.base.Baseline`, :class:`~pixrec.baselines.base.FitContext`) imports
:mod:`pixrec.baselines.base` alone, which loads no baseline (and no torch: SASRec's module does).

A new baseline is one module with one ``@BASELINES.register`` class, and one name in the import below.
"""

from pixrec.baselines import (  # noqa: F401  (each registers itself)
    content,
    ease,
    factors,
    hybrid,
    neighbours,
    popularity,
    sasrec,
)
