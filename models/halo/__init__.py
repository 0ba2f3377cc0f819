"""The HALO learned optimizer: architecture, weights, controller, kernels' glue, distillation.

Importing this package registers ``"halo"`` in ``models.registry.LEARNED`` (builder
:func:`models.halo.optimizer.build_halo`; default structural sparsity: the update
probabilities by thirds of the layers stored in the weights, 10%/30%/50% for
halo-v0).  Nothing else is
built at import time; weights are read when an optimizer is built.
"""

from __future__ import annotations

from models.halo.optimizer import build_halo, default_sparsity, make_halo
from models.registry import LEARNED

LEARNED["halo"] = (build_halo, default_sparsity)

__all__ = ["build_halo", "make_halo", "default_sparsity"]
