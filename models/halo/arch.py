"""HALO's learned weights as one value: the per-parameter MLP, the per-tensor controller, constants.

``HaloWeights`` is everything a weights file holds (docs/halo.md §4).  The
per-parameter level is ``kernels.halo_fold.MirrorMLP``; the tensor and global levels
are the controller's ``theta`` (2 outputs x ``len(CONTROLLER_FEATURES)`` inputs).
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional, Tuple

import numpy as np

from kernels.halo_fold import N_FEATURES, N_PAIRS, MirrorMLP, adam_like
from kernels.sparsity import HALO_PROBABILITIES
from models.halo.schedule import FIELDS as VALIDATION_FIELDS
from models.halo.schedule import ValidationLevel, level_from_mapping

FORMAT = "halo-mirror-mlp/1"
"""Weights format tag stored in every file; a file with another tag is refused."""

MLP_FEATURES: Tuple[str, ...] = ("x_g = g / (sqrt(v_hat) + eps)", "x_m = m_hat / (sqrt(v_hat) + eps)")
"""The per-parameter inputs, in order."""

CONTROLLER_FEATURES: Tuple[str, ...] = (
    "bias",              # 1
    "depth",             # 1 - 2 * (layer index + 1/2) / layers: +1 at the input, -1 at the output
    "log_update_rate",   # log(count / (step + 1)), clipped to [-5, 0]: how often the layer is updated
    "progress",          # t / T, the fraction of the budget used
    "mid_run",           # 4 (t/T) (1 - t/T)
    "loss_trend",        # clip(fast - slow EMA of log loss, -1, 1)
    "rel_log_grad",      # clip(log RMS g - its EMA, -3, 3): relative log gradient magnitude
    "log_update_ratio",  # clip(log RMS(last update) - log (RMS(p) + 1e-3), -12, 2)
    "rel_log_lr",        # log lr multiplier last step minus its mean over tensors
)
"""Per-tensor inputs of the controller, in order (models.halo.controller)."""

__all__ = ["FORMAT", "MLP_FEATURES", "CONTROLLER_FEATURES", "CONTROLLER_OUTPUTS", "HaloWeights",
           "VALIDATION_FIELDS", "adam_like_weights", "check_weights"]

CONTROLLER_OUTPUTS: Tuple[str, ...] = ("log_lr_multiplier", "log_gain")


class HaloWeights(NamedTuple):
    """A complete set of HALO weights.

    ``mlp``: the per-parameter network; ``theta`` float64 (2, len(CONTROLLER_FEATURES)):
    rows give the per-tensor ``log lr multiplier`` and ``log gain`` as linear functions
    of the controller features; ``base_lr``: learning rate the multipliers scale
    (overridden by an explicit ``lr``); ``beta1``, ``beta2``, ``eps``: moment decays and
    epsilon; ``log_clip``: both controller outputs are clipped to +-log_clip;
    ``update_probabilities``: the structural sparsity the weights were trained for,
    per third of the layers (first, middle, last; HALO's 10/30/50 for halo-v0);
    ``validation``: the validation level (``models.halo.schedule``), None when the
    weights have none (halo-v0..v2).
    """

    mlp: MirrorMLP
    theta: np.ndarray
    base_lr: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    log_clip: float = 3.0
    update_probabilities: Tuple[float, float, float] = HALO_PROBABILITIES
    validation: Optional[ValidationLevel] = None


def adam_like_weights(base_lr: float = 1e-3) -> HaloWeights:
    """Adam exactly: the Adam-like MLP, every controller weight 0 (multiplier 1, gain 1)."""
    return HaloWeights(adam_like(), np.zeros((2, len(CONTROLLER_FEATURES))), float(base_lr))


def check_weights(w: HaloWeights, where: str) -> HaloWeights:
    """``w`` with arrays as float64 and shapes and values checked; ``ValueError`` naming ``where``."""
    mlp = w.mlp
    shapes = {"mlp_w": (np.shape(mlp.w), (N_PAIRS, N_FEATURES)),
              "mlp_b": (np.shape(mlp.b), (N_PAIRS,)),
              "mlp_delta": (np.shape(mlp.delta), (N_PAIRS,)),
              "mlp_mu": (np.shape(mlp.mu), (N_PAIRS,)),
              "theta": (np.shape(w.theta), (2, len(CONTROLLER_FEATURES)))}
    for name, (got, want) in shapes.items():
        if tuple(got) != want:
            raise ValueError(f"{where}: {name} has shape {tuple(got)}, expected {want}")
    mlp = MirrorMLP(*(np.asarray(a, np.float64) for a in mlp[:4]), float(mlp.b_q))
    theta = np.asarray(w.theta, np.float64)
    scalars = (w.base_lr, w.beta1, w.beta2, w.eps, w.log_clip, mlp.b_q)
    if not all(np.all(np.isfinite(a)) for a in (*mlp[:4], theta)) or not all(
            math.isfinite(float(x)) for x in scalars):
        raise ValueError(f"{where}: weights contain non-finite values")
    if not (w.base_lr > 0 and 0 <= w.beta1 < 1 and 0 <= w.beta2 < 1 and w.eps > 0
            and w.log_clip > 0):
        raise ValueError(f"{where}: bad constants base_lr={w.base_lr} beta1={w.beta1} "
                         f"beta2={w.beta2} eps={w.eps} log_clip={w.log_clip}")
    probs = tuple(float(p) for p in np.ravel(np.asarray(w.update_probabilities, np.float64)))
    if len(probs) != 3 or not all(0.0 < p <= 1.0 for p in probs):
        raise ValueError(f"{where}: update_probabilities must be 3 values in (0, 1], "
                         f"got {list(probs)}")
    validation = w.validation
    if validation is not None:
        validation = level_from_mapping(validation._asdict(), where)
    return w._replace(mlp=mlp, theta=theta, base_lr=float(w.base_lr), beta1=float(w.beta1),
                      beta2=float(w.beta2), eps=float(w.eps), log_clip=float(w.log_clip),
                      update_probabilities=probs, validation=validation)
