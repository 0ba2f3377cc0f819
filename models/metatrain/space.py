"""The meta-parameters ES learns: named, tensor-level coordinates over a warm-start ``HaloWeights``.

ES can afford tens of meta-parameters, not thousands (``docs/metatrain.md``), so the
learned capacity sits where one number moves a whole tensor's behaviour: the
controller's weights (per-tensor learning rate and gain as functions of the
features), the handful of per-parameter MLP weights, the moment decays and the
update probabilities of the three thirds of the layers.

A meta-parameter vector ``x`` holds *offsets* from the start weights, so ``x = 0`` is
the start (``halo-v0`` with the configured probabilities).  Coordinates:

- ``lr.<feature>`` / ``gain.<feature>``: added to ``theta[0 | 1, feature]`` (features
  of ``models.halo.arch.CONTROLLER_FEATURES``);
- ``mlp.w_g``, ``mlp.w_m``, ``mlp.b``, ``mlp.delta``, ``mlp.mu``: added to the first
  mirror pair's weights (input weight of ``x_g``, of ``x_m``, bias, direction and
  magnitude output weights); ``mlp.b_q``: added to the magnitude bias;
- ``beta1``, ``beta2``: added to ``logit(beta)``;
- ``p.first``, ``p.middle``, ``p.last``: added to ``logit(p)`` of that third's update
  probability; the result is kept in ``[P_MIN, 1]``;
- ``mlp2.w_g``, ``mlp2.w_m``, ``mlp2.b``, ``mlp2.delta``, ``mlp2.mu``: the same for the
  second mirror pair (zero in halo-v0..v2: switched off until a coordinate moves it);
- ``val.start``, ``val.s_max``, ``val.epochs_coef``, ``val.skew_coef``: added to the
  validation level's start and ceiling of the log-lr offset and to its planned-epochs and
  duplication-skew coefficients;
  ``val.up``, ``val.down``, ``val.tol``: added to their logarithms
  (``models.halo.schedule``).  A space with any ``val.*`` coordinate gives its weights
  a validation level (the start weights' own, or ``VAL_START``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

from models.halo.arch import CONTROLLER_FEATURES, HaloWeights
from models.halo.schedule import ValidationLevel

P_MIN = 0.02
"""Smallest update probability meta-training may reach (a layer is never frozen outright)."""

_MLP = {"mlp.w_g": ("w", (0, 0)), "mlp.w_m": ("w", (0, 1)), "mlp.b": ("b", (0,)),
        "mlp.delta": ("delta", (0,)), "mlp.mu": ("mu", (0,))}
_MLP.update({"mlp2.w_g": ("w", (1, 0)), "mlp2.w_m": ("w", (1, 1)), "mlp2.b": ("b", (1,)),
             "mlp2.delta": ("delta", (1,)), "mlp2.mu": ("mu", (1,))})
_THIRDS = ("p.first", "p.middle", "p.last")
_VAL_LINEAR = ("val.start", "val.s_max", "val.epochs_coef", "val.rollback", "val.s_min",
               "val.skew_coef")
"""``val.rollback`` is clamped at 0 (off) after the offset: negative values switch it off."""
_VAL_LOG = ("val.up", "val.down", "val.tol")
VAL_START = ValidationLevel(start=0.0, up=0.05, down=0.5, tol=0.05, s_max=0.0,
                            fraction=0.1, max_examples=256, every=25)
"""The validation level a space with ``val.*`` coordinates starts from when the start
weights have none: no move at first beyond a mild slow-down on a worse held-out loss."""


def coordinate_names() -> List[str]:
    """Every coordinate a config may list, in a stable order."""
    names = [f"{row}.{f}" for row in ("lr", "gain") for f in CONTROLLER_FEATURES]
    return (names + list(_MLP) + ["mlp.b_q", "beta1", "beta2"] + list(_THIRDS)
            + list(_VAL_LINEAR) + list(_VAL_LOG))


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


@dataclass(frozen=True)
class MetaSpace:
    """Named coordinates over ``start`` weights with ``start_probabilities`` (per third)."""

    names: Tuple[str, ...]
    start: HaloWeights
    start_probabilities: Tuple[float, float, float]

    def __post_init__(self):
        known = set(coordinate_names())
        for n in self.names:
            if n not in known:
                raise ValueError(f"meta_parameters: unknown coordinate {n!r}; "
                                 f"known: {', '.join(coordinate_names())}")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"meta_parameters: repeated names in {list(self.names)}")
        for p in self.start_probabilities:
            if not P_MIN <= p <= 1.0:
                raise ValueError(f"start_probabilities: {p!r} is not in [{P_MIN}, 1]")

    @property
    def dim(self) -> int:
        return len(self.names)

    def zeros(self) -> np.ndarray:
        return np.zeros(self.dim)

    def weights(self, x: Sequence[float]) -> HaloWeights:
        """The HALO weights at offsets ``x`` (update probabilities included)."""
        x = np.asarray(x, np.float64)
        if x.shape != (self.dim,):
            raise ValueError(f"meta-parameters: expected {self.dim} values, got shape {x.shape}")
        w = self.start
        theta = np.array(w.theta, np.float64)
        mlp = {k: np.array(getattr(w.mlp, k), np.float64) for k in ("w", "b", "delta", "mu")}
        b_q = float(w.mlp.b_q)
        betas = {"beta1": w.beta1, "beta2": w.beta2}
        logits = [_logit(p) if p < 1.0 else 12.0 for p in self.start_probabilities]
        level = w.validation
        if level is None and any(n.startswith("val.") for n in self.names):
            level = VAL_START
        val = {} if level is None else level._asdict()
        for name, v in zip(self.names, x):
            v = float(v)
            if name.startswith(("lr.", "gain.")):
                row, feat = name.split(".", 1)
                theta[0 if row == "lr" else 1, CONTROLLER_FEATURES.index(feat)] += v
            elif name in _MLP:
                arr, idx = _MLP[name]
                mlp[arr][idx] += v
            elif name == "mlp.b_q":
                b_q += v
            elif name in betas:
                betas[name] = _sigmoid(_logit(betas[name]) + v)
            elif name in _VAL_LINEAR:
                val[name[4:]] += v
            elif name in _VAL_LOG:
                val[name[4:]] = max(float(val[name[4:]]), 1e-6) * math.exp(v)
            else:
                logits[_THIRDS.index(name)] += v
        if "rollback" in val:
            val["rollback"] = max(0.0, float(val["rollback"]))
        probs = tuple(min(1.0, max(P_MIN, _sigmoid(z))) if z < 12.0 else 1.0 for z in logits)
        new_mlp = w.mlp._replace(w=mlp["w"], b=mlp["b"], delta=mlp["delta"], mu=mlp["mu"], b_q=b_q)
        return w._replace(mlp=new_mlp, theta=theta, beta1=float(betas["beta1"]),
                          beta2=float(betas["beta2"]), update_probabilities=probs,
                          validation=None if level is None else ValidationLevel(**val))

    def describe(self, x: Sequence[float]) -> Dict[str, float]:
        """Readable values at ``x``: update probabilities and betas (for logs and cards)."""
        w = self.weights(x)
        out = {f"p_{t}": round(p, 4) for t, p in zip(("first", "middle", "last"),
                                                      w.update_probabilities)}
        out.update(beta1=round(w.beta1, 5), beta2=round(w.beta2, 6))
        if w.validation is not None:
            out.update({f"val_{k}": round(float(getattr(w.validation, k)), 5)
                        for k in ("start", "up", "down", "tol", "s_max", "epochs_coef", "rollback", "s_min",
                                  "skew_coef")})
        return out


def noisy(w: HaloWeights, scale: float, rng: np.random.Generator) -> HaloWeights:
    """``w`` with Gaussian noise on the controller and MLP weight tensors, each scaled to
    ``scale * ||tensor|| / sqrt(size)`` (the amalgamation paper's stability trick).

    Only non-zero entries get noise: a zero weight switches a feature or a mirror pair
    off, and noise there would switch it on (and change the kernel's cost)."""
    if scale <= 0:
        return w

    def jitter(a):
        a = np.asarray(a, np.float64)
        rms = float(np.linalg.norm(a)) / math.sqrt(max(a.size, 1))
        return a + rng.standard_normal(a.shape) * scale * rms * (a != 0.0)

    mlp = w.mlp._replace(w=jitter(w.mlp.w), delta=jitter(w.mlp.delta), mu=jitter(w.mlp.mu))
    return w._replace(mlp=mlp, theta=jitter(w.theta))
