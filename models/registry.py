"""Optimizers by name for a given network: the hand-designed rules and the HALO learned optimizer.

The HALO optimizer registers itself here through :data:`LEARNED` (name -> builder
taking the network, the learning rate and options such as ``weights`` and
``kernel``) so that the engine, the daemon and the benchmarks ask for every
optimizer the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from kernels.optim_base import Optimizer
from kernels.optimizers import OPTIMIZERS, make_optimizer
from models.nets import Network

# name -> (builder(net, lr, options) -> Optimizer,
#          default sparsity: a scheme, None, or a function(options) -> scheme or None)
LEARNED: Dict[str, Any] = {}


def _load_learned() -> None:
    """Import the learned optimizers' modules (they fill :data:`LEARNED`)."""
    try:
        import models.halo  # noqa: F401  (registers "halo")
    except ImportError as e:  # models.halo not present in this build
        if "models.halo" not in str(e):
            raise
    import models.hypergrad  # noqa: F401  (registers "momentum-schedule", a tuned schedule)


def optimizer_names() -> List[str]:
    """Every optimizer name a job may ask for."""
    _load_learned()
    return sorted(set(OPTIMIZERS) | set(LEARNED))


def default_sparsity(name: str, hyperparameters: Optional[Dict[str, Any]] = None) -> Optional[str]:
    """The structural-sparsity scheme an optimizer runs with when none is asked for.

    For the HALO optimizer it is the one its weights were trained for
    (``thirds:P1,P2,P3``, read from the weights ``hyperparameters`` name, default the
    newest shipped); None, i.e. dense, for hand-designed ones.
    """
    _load_learned()
    if name not in LEARNED:
        return None
    scheme = LEARNED[name][1]
    return scheme(dict(hyperparameters or {})) if callable(scheme) else scheme


def build_optimizer(name: str, lr: Optional[float], net: Network,
                    hyperparameters: Optional[Dict[str, Any]] = None,
                    data_dir: Optional[Path] = None) -> Optimizer:
    """The optimizer ``name`` for ``net`` (learning rate None: its default).

    A learned optimizer's builder gets ``options = dict(hyperparameters,
    data_dir=data_dir)`` (the data directory holds per-machine kernel choices).
    """
    _load_learned()
    if name in LEARNED:
        builder: Callable[..., Optimizer] = LEARNED[name][0]
        return builder(net, lr, dict(hyperparameters or {}, data_dir=data_dir))
    return make_optimizer(name, lr=lr, **(hyperparameters or {}))
