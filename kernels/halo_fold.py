"""HALO's per-parameter MLP in mirror-pair form, and the folding of per-step scalars into it.

The per-parameter network (docs/halo.md §2) reads F = 2 features per parameter,

    x_g = g / sigma,   x_m = m_hat / sigma,   sigma = sqrt(v_hat) + eps,

(Adam's bias-corrected moments ``m_hat``, ``v_hat``), has H = 4 ReLU hidden units
and two outputs, a direction ``d`` and a magnitude ``q``.  The hidden units come in
two *mirror pairs* k = 0, 1 with tied first-layer weights::

    z_k = w_k . x,    h_k+ = relu(z_k + b_k),    h_k- = relu(-z_k + b_k)
    d   = sum_k delta_k (h_k+ - h_k-)            (odd in x)
    q   = b_q + sum_k mu_k (h_k+ + h_k-)         (even in x)

so the optimizer is odd, ``step(-g) = -step(g)``, like every teacher it is distilled
from.  In untied form this is an ordinary 2 -> 4 -> 2 MLP (:func:`untied`).  The
parameter step, with the per-tensor learning rate ``lr`` and gain ``gamma`` set by
the controller, is::

    delta_p = -lr * d * max(1 + gamma * q, 0)

Identities the elementwise kernel uses (``beta = b / |rho|``, ``z = rho * zeta``)::

    h+ - h- = rho * (zeta + sign(beta) * clip(zeta, -|beta|, |beta|))
    h+ + h- = |rho| * (max(|zeta|, |beta|) + beta)

Everything here is pure arithmetic on Python floats and small arrays.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

N_FEATURES = 2
"""Per-parameter input features: x_g (scaled gradient), x_m (scaled momentum)."""
N_PAIRS = 2
"""Mirror pairs; hidden width is 2 * N_PAIRS = 4."""


class MirrorMLP(NamedTuple):
    """Weights of the per-parameter MLP (float64 arrays).

    ``w`` (N_PAIRS, N_FEATURES): pair directions over (x_g, x_m); ``b`` (N_PAIRS,):
    pair biases; ``delta`` (N_PAIRS,): weight of each pair's odd part in ``d``;
    ``mu`` (N_PAIRS,): weight of each pair's even part in ``q``; ``b_q``: bias of ``q``.
    """

    w: np.ndarray
    b: np.ndarray
    delta: np.ndarray
    mu: np.ndarray
    b_q: float


def adam_like() -> MirrorMLP:
    """The Adam-like initialisation: ``d = x_m = m_hat / sigma`` exactly, ``q = 0``.

    Pair 0 reads x_m with zero bias, so ``relu(x_m) - relu(-x_m) = x_m``; pair 1 is
    unused.  The step is then Adam's, ``-lr * m_hat / (sqrt(v_hat) + eps)``.
    """
    return MirrorMLP(w=np.array([[0.0, 1.0], [0.0, 0.0]]), b=np.zeros(2),
                     delta=np.array([1.0, 0.0]), mu=np.zeros(2), b_q=0.0)


def untied(mlp: MirrorMLP) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The same network as an ordinary MLP: ``(W1 (F, 4), b1 (4,), W2 (4, 2), b2 (2,))``.

    Hidden unit order: (pair 0 +, pair 0 -, pair 1 +, pair 1 -).  Outputs: (d, q).
    ``d, q = relu(x @ W1 + b1) @ W2 + b2`` for features ``x`` (N, F).
    """
    w1 = np.empty((N_FEATURES, 2 * N_PAIRS))
    b1 = np.empty(2 * N_PAIRS)
    w2 = np.empty((2 * N_PAIRS, 2))
    for k in range(N_PAIRS):
        w1[:, 2 * k], w1[:, 2 * k + 1] = mlp.w[k], -mlp.w[k]
        b1[2 * k] = b1[2 * k + 1] = mlp.b[k]
        w2[2 * k] = (mlp.delta[k], mlp.mu[k])
        w2[2 * k + 1] = (-mlp.delta[k], mlp.mu[k])
    return w1, b1, w2, np.array([0.0, float(mlp.b_q)])


def moment_scales(beta1: float, beta2: float, count: int) -> Tuple[float, float]:
    """``(a_m, a_v)`` with ``m_hat = a_m * m`` and ``sqrt(v_hat) = a_v * sqrt(v)``.

    The state keeps unnormalised sums ``m <- beta1 m + g`` and ``v <- beta2 v + g^2``
    (two passes fewer than Adam's ``(1 - beta)`` weighting), so
    ``a_m = (1 - beta1) / (1 - beta1^count)`` and
    ``a_v = sqrt((1 - beta2) / (1 - beta2^count))``.
    """
    a_m = (1.0 - beta1) / (1.0 - beta1**count)
    a_v = math.sqrt((1.0 - beta2) / (1.0 - beta2**count))
    return a_m, a_v


class PairFold(NamedTuple):
    """One mirror pair with this step's scalars folded in (elementwise kernel form).

    ``zeta = (base + kappa * other) / s`` where ``base``/``other`` is ``m``/``g``
    (``base_is_m``) or ``g``/``m``; the pre-activation is ``z = rho * zeta``;
    ``beta = b / |rho|``.  ``odd`` / ``even``: whether d / q read this pair.
    """

    base_is_m: bool
    kappa: float
    rho: float
    beta: float
    odd: bool
    even: bool


class StepFold(NamedTuple):
    """Per-step constants (depend on the update count only).

    ``eps_s``: the epsilon added to ``sqrt(v)``; ``pairs``: the active pairs;
    ``d_scale``: ``D = delta_k0 rho_k0`` of the first pair in ``d`` (0: d is 0);
    ``d_coef``: per active pair, its odd part's coefficient in ``A = d / D``;
    ``q_bias``: ``b_q + sum mu_k |rho_k| beta_k``; ``q_coef``: per pair
    ``mu_k |rho_k|`` (the coefficient of ``max(|zeta_k|, |beta_k|)`` in q).
    """

    eps_s: float
    pairs: Tuple[PairFold, ...]
    d_scale: float
    d_coef: Tuple[float, ...]
    q_bias: float
    q_coef: Tuple[float, ...]


def fold_step(mlp: MirrorMLP, beta1: float, beta2: float, eps: float, count: int) -> StepFold:
    """Fold the bias corrections of update ``count`` (1-based) into the MLP's weights.

    With ``s = sqrt(v) + eps / a_v`` the features are ``x_g = g / (a_v s)`` and
    ``x_m = a_m m / (a_v s)``, so pair k's pre-activation is
    ``z_k = (u_g g + u_m m) / s`` with ``u_g = w_kg / a_v``, ``u_m = w_km a_m / a_v``;
    the larger of the two coefficients becomes ``rho`` and the base vector.
    """
    return fold_floats(mlp_floats(mlp), beta1, beta2, eps, count)


MlpFloats = Tuple[float, Tuple[Tuple[float, float, float, float, float], ...]]
"""``(b_q, ((w_g, w_m, delta, mu, b) per pair))``: a :class:`MirrorMLP` as Python floats."""


def mlp_floats(mlp: MirrorMLP) -> MlpFloats:
    """The weights as Python floats, what :func:`fold_floats` reads (convert once, fold often)."""
    return float(mlp.b_q), tuple((float(mlp.w[k, 0]), float(mlp.w[k, 1]), float(mlp.delta[k]),
                                  float(mlp.mu[k]), float(mlp.b[k])) for k in range(N_PAIRS))


def fold_floats(mlp: MlpFloats, beta1: float, beta2: float, eps: float, count: int) -> StepFold:
    """:func:`fold_step` from :func:`mlp_floats` (same arithmetic, same values)."""
    a_m, a_v = moment_scales(beta1, beta2, count)
    pairs = []
    d_scale = 0.0
    d_coef = []
    q_bias, per_pair = mlp
    q_coef = []
    for w_g, w_m, delta, mu, b in per_pair:
        u_g = w_g / a_v
        u_m = w_m * a_m / a_v
        if u_g == 0.0 and u_m == 0.0:  # dead pair: h+ = h- = relu(b), constant
            q_bias += mu * 2.0 * max(b, 0.0)
            continue
        if abs(u_m) >= abs(u_g):
            base_is_m, rho, kappa = True, u_m, u_g / u_m
        else:
            base_is_m, rho, kappa = False, u_g, u_m / u_g
        odd, even = delta != 0.0, mu != 0.0
        if not (odd or even):
            continue
        beta = b / abs(rho)
        pairs.append(PairFold(base_is_m, kappa, rho, beta, odd, even))
        if odd:
            if d_scale == 0.0:
                d_scale = delta * rho
            d_coef.append(delta * rho / d_scale)
        else:
            d_coef.append(0.0)
        if even:
            q_bias += mu * abs(rho) * beta
            q_coef.append(mu * abs(rho))
        else:
            q_coef.append(0.0)
    return StepFold(eps / a_v, tuple(pairs), d_scale, tuple(d_coef), q_bias, tuple(q_coef))


def tensor_scalars(fold: StepFold, lr: float, gamma: float) -> Tuple[float, Tuple[float, ...], bool]:
    """Per-tensor constants of ``E = max(e0 + sum_k e_k M_k, 0)``, ``M_k = max(|zeta_k|, |beta_k|)``.

    ``delta_p = -sign(D) * A * E`` equals ``-lr * d * max(1 + gamma q, 0)``.  Returns
    ``(e0, e, clamp)``; ``clamp`` False when ``E >= 0`` holds anyway (every
    ``e_k >= 0`` and ``e0 + sum e_k |beta_k| >= 0``), so the kernel skips the max.
    """
    scale = abs(lr * fold.d_scale)
    e0 = scale * (1.0 + gamma * fold.q_bias)
    e = tuple(scale * gamma * c for c in fold.q_coef)
    low = e0 + sum(ek * abs(pf.beta) for ek, pf in zip(e, fold.pairs))
    clamp = any(ek < 0.0 for ek in e) or low < 0.0
    return e0, e, clamp


def reference_step(mlp: MirrorMLP, g: np.ndarray, m_hat: np.ndarray, v_hat: np.ndarray,
                   eps: float, lr: float, gamma: float) -> np.ndarray:
    """The parameter step in float64 straight from the definition (untied MLP).

    ``g``, ``m_hat``, ``v_hat``: (N,) gradient and bias-corrected moments.  Returns
    ``delta_p`` (N,) = ``-lr * d * max(1 + gamma q, 0)``.  For tests and distillation.
    """
    sigma = np.sqrt(np.asarray(v_hat, np.float64)) + eps
    x = np.stack([np.asarray(g, np.float64) / sigma, np.asarray(m_hat, np.float64) / sigma], 1)
    w1, b1, w2, b2 = untied(mlp)
    out = np.maximum(x @ w1 + b1, 0.0) @ w2 + b2
    return -lr * out[:, 0] * np.maximum(1.0 + gamma * out[:, 1], 0.0)


class Pieces(NamedTuple):
    """The tensors of a segment ``[0, n)`` as arrays, so a step costs O(1) NumPy calls in them.

    ``bounds`` int64 (k+1,): ``bounds[0] = 0``, ``bounds[-1] = n``, tensor i is
    ``[bounds[i], bounds[i+1])``; ``lr``, ``gamma`` float64 (k,): its learning rate and gain;
    ``sizes``: ``diff(bounds)`` when the caller has it at hand (None: computed).
    """

    bounds: np.ndarray
    lr: np.ndarray
    gamma: np.ndarray
    sizes: Optional[np.ndarray] = None

    @classmethod
    def of(cls, pieces: Union[Pieces, Sequence[Tuple[int, int, float, float]]]) -> Pieces:
        """``pieces`` as given, or built from consecutive ``(a, b, lr, gamma)`` tuples."""
        if isinstance(pieces, Pieces):
            return pieces
        bounds = np.array([pieces[0][0]] + [b for _, b, _, _ in pieces], np.int64)
        return cls(bounds, np.array([lr for _, _, lr, _ in pieces], np.float64),
                   np.array([gam for _, _, _, gam in pieces], np.float64))

    def uniform(self) -> bool:
        """True when every tensor has the same ``(lr, gamma)``: one scalar pair will do."""
        lr, gam = self.lr, self.gamma
        return bool(lr.size == 1 or ((lr == lr[0]).all() and (gam == gam[0]).all()))

    def spread(self, values: np.ndarray) -> np.ndarray:
        """Per-tensor ``values`` (k,) repeated over each tensor's elements: float32 (n,)."""
        sizes = np.diff(self.bounds) if self.sizes is None else self.sizes
        return np.repeat(values.astype(np.float32), sizes)


def tensor_arrays(fold: StepFold, lr: np.ndarray, gamma: np.ndarray):
    """:func:`tensor_scalars` for arrays of tensors, without ``clamp``: ``(e0 (k,), [e_k (k,)])``,
    the same float64 operations in the same order, so the same values."""
    scale = np.abs(lr * fold.d_scale)
    sg = scale * gamma
    return scale * (1.0 + gamma * fold.q_bias), [sg * c for c in fold.q_coef]


class KernelBase:
    """What both HALO kernels keep: the per-parameter weights, the moment decays and
    epsilon, the chunk size (at most ``n_max``), and three scratch vectors of one
    chunk (``_s``, ``_t``, ``_e``) allocated once."""

    def __init__(self, mlp: MirrorMLP, beta1: float, beta2: float, eps: float, n_max: int,
                 chunk: int):
        self.mlp, self.beta1, self.beta2, self.eps = mlp, beta1, beta2, eps
        self.chunk = max(1, min(int(n_max), int(chunk)))
        self._s, self._t, self._e = (np.empty(self.chunk, np.float32) for _ in range(3))

    def update_runs(self, p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray,
                    runs: Sequence[Tuple[int, int, int, Pieces]]) -> None:
        """``update`` for adjacent runs of tensors at different update counts: ``runs`` of
        ``(a, b, count, pieces)``, run r updating ``[a, b)`` (pieces relative to ``a``)."""
        for a, b, count, pieces in runs:
            self.update(p[a:b], g[a:b], m[a:b], v[a:b], count, pieces)
