"""DVC stage entry points: thin commands that parse paths, read their own params and call pixrec.

Importing this package pins the CPU kernel paths of torch and numpy (:mod:`pixrec.numerics`) before
any stage module loads them, so that a stage's output bytes do not depend on the x86 CPU it runs on.
"""

from pixrec.numerics import pin_cpu_kernels

pin_cpu_kernels()
