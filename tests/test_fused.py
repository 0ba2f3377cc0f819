"""The compiled fused loops (kernels/_fused.c) give the ufunc chains' results bit for bit.

Each case runs the same update twice in one process: with the fused loop, and with
``HALO_FUSED=0`` (the NumPy ufunc chain, the reference), over gradients spanning 12 orders
of magnitude, zeros and sizes that cross the loop's block and the chain's chunk.
"""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from kernels import fused
from kernels.halo_elementwise import CHUNK, ElementwiseKernel
from kernels.halo_fold import MirrorMLP, Pieces, adam_like
from kernels.optim_base import StepInfo
from kernels.optimizers import adam
from models.halo.weights import load_weights, shipped_versions

B1, B2, EPS = 0.9, 0.999, 1e-8

needs_fused = pytest.mark.skipif(not fused.built(), reason="kernels._fused is not built (no C compiler "
                                 "at install time); the ufunc chains serve")


def _can_build() -> bool:
    """Python's C compiler and its headers are here (what building kernels._fused needs)."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    return shutil.which(cc) is not None and headers.exists()


def test_built_wherever_a_compiler_is():
    """An install on a machine with Python's C compiler and headers builds the fused loops
    (the build is optional, so a broken build would otherwise go unnoticed)."""
    if not _can_build():
        pytest.skip("no C compiler or Python headers here: the fused loops are optional")
    assert fused.built(), "kernels._fused was not built although a C compiler is present"
    if fused.enabled() is not None:  # HALO_FUSED=0 runs the suite on the ufunc chains
        assert fused.describe().startswith("fused C")


def test_switch_off(monkeypatch):
    monkeypatch.setenv(fused.ENV, "0")
    assert fused.enabled() is None
    assert ElementwiseKernel(adam_like(), B1, B2, EPS, 8).implementation == "ufunc"
    assert "HALO_FUSED=0" in fused.describe() or not fused.built()


def _gradients(rng, n, steps):
    out = []
    for t in range(steps):
        g = rng.standard_normal(n) * 10.0 ** rng.uniform(-8, 4, n)
        g[rng.random(n) < 0.05] = 0.0
        if t == 1:
            g[:] = 0.0  # an all-zero step (sparse segments see them)
        out.append(g.astype(np.float32))
    return out


def _mlp(seed: int) -> MirrorMLP:
    rng = np.random.default_rng(seed)
    return MirrorMLP(rng.standard_normal((2, 2)), rng.standard_normal(2) * 0.5,
                     rng.standard_normal(2), rng.standard_normal(2) * 0.3,
                     float(rng.standard_normal() * 0.3))


MLPS = {name: load_weights(path).mlp for name, path in shipped_versions().items()}
MLPS.update({
    "adam-like": adam_like(),
    "random": _mlp(1),
    "neg-bias": _mlp(2)._replace(b=np.array([-0.4, -0.2])),
    "pos-and-neg-bias": _mlp(3)._replace(b=np.array([0.15, -0.3])),
    "pure-axes": _mlp(4)._replace(w=np.array([[0.0, 1.3], [-0.8, 0.0]])),
    "direction-only": _mlp(5)._replace(mu=np.zeros(2)),
    "no-direction": adam_like()._replace(delta=np.zeros(2)),
    "negative-gain": _mlp(6)._replace(mu=np.array([-0.7, 0.4]), b_q=-0.2),
})


def _one_pair(w, b, mu, b_q=0.1, delta=1.2) -> MirrorMLP:
    """A plan with one active pair (the shipped weights' shape: the fused loop's fast path)."""
    return MirrorMLP(np.array([w, [0.0, 0.0]]), np.array([b, 0.0]), np.array([delta, 0.0]),
                     np.array([mu, 0.0]), b_q)


# every shape of the one-pair path: kappa or not, either base, the three odd modes,
# with and without a magnitude (E reads M or not), E clamped or not, either step sign
MLPS.update({
    "one-pair-v2-like": _one_pair([0.4, 1.1], 0.0, 0.3),
    "one-pair-clip": _one_pair([0.4, 1.1], 0.2, 0.3),
    "one-pair-neg-bias": _one_pair([1.3, -0.2], -0.25, -0.4, b_q=-0.3),
    "one-pair-g-only": _one_pair([0.9, 0.0], 0.1, 0.5),
    "one-pair-m-only-no-gain": _one_pair([0.0, 1.0], 0.3, 0.0),
    "one-pair-negative-step": _one_pair([0.5, 0.8], 0.1, 0.2, delta=-0.7),
})

# (n, pieces): one tensor; several tensors with one gain (shared E) and different rates;
# several with different gains (general E); a segment longer than the chain's chunk
LAYOUTS = {
    "one": (1000, [(0, 1000, 3e-3, 1.0)]),
    "shared-gain": (777, [(0, 300, 1e-2, 0.5), (300, 301, 2e-3, 0.5), (301, 777, 5e-4, 0.5)]),
    "same-lr-gain": (513, [(0, 200, 1e-2, 0.5), (200, 513, 1e-2, 0.5)]),
    "general": (900, [(0, 250, 1e-2, 0.0), (250, 600, 3e-3, 2.0), (600, 900, 1e-3, -0.5)]),
    "long": (CHUNK + 4099, [(0, 40000, 1e-3, 1.0), (40000, CHUNK + 4099, 2e-3, 0.3)]),
}


def _run_halo(mlp, n, pieces, counts, native: bool, monkeypatch):
    monkeypatch.setenv(fused.ENV, "1" if native else "0")
    k = ElementwiseKernel(mlp, B1, B2, EPS, n)
    assert k.implementation == ("fused" if native else "ufunc")
    rng = np.random.default_rng(7)
    p = rng.standard_normal(n).astype(np.float32)
    m, v = np.zeros(n, np.float32), np.zeros(n, np.float32)
    for c, g in zip(counts, _gradients(rng, n, len(counts))):
        k.update(p, g, m, v, c, Pieces.of(pieces))
    return p, m, v


@needs_fused
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("name", sorted(MLPS))
def test_halo_fused_is_the_chain(name, layout, monkeypatch):
    """Same parameters and moments, bit for bit, over counts early (large bias corrections)
    and late, including a jump (a sparse segment's count)."""
    n, pieces = LAYOUTS[layout]
    counts = [1, 2, 3, 10, 11, 400]
    got = _run_halo(MLPS[name], n, pieces, counts, True, monkeypatch)
    want = _run_halo(MLPS[name], n, pieces, counts, False, monkeypatch)
    for a, b, what in zip(got, want, "pmv"):
        np.testing.assert_array_equal(a, b, err_msg=f"{what} differs ({name}, {layout})")


@needs_fused
def test_halo_fused_propagates_nan(monkeypatch):
    """A non-finite gradient poisons the same elements in both (NaN-propagating max/min)."""
    n = 300
    pieces = [(0, n, 1e-2, 1.0)]
    out = []
    for native in (True, False):
        monkeypatch.setenv(fused.ENV, "1" if native else "0")
        k = ElementwiseKernel(MLPS["pos-and-neg-bias"], B1, B2, EPS, n)
        p = np.ones(n, np.float32)
        m, v = np.zeros(n, np.float32), np.zeros(n, np.float32)
        g = np.linspace(-1, 1, n).astype(np.float32)
        g[[3, 77]] = np.nan
        g[100] = np.inf
        k.update(p, g, m, v, 1, pieces)
        out.append(p)
    np.testing.assert_array_equal(np.isnan(out[0]), np.isnan(out[1]))
    np.testing.assert_array_equal(out[0], out[1])


@needs_fused
@pytest.mark.parametrize("n", [1, 255, 257, 10000, CHUNK + 1])
def test_adam_fused_is_the_chain(n, monkeypatch):
    res = []
    for native in (True, False):
        monkeypatch.setenv(fused.ENV, "1" if native else "0")
        opt = adam(3e-3, beta1=0.8, beta2=0.99, eps=1e-7)
        rng = np.random.default_rng(3)
        p = rng.standard_normal(n).astype(np.float32)
        st = opt.init(n)
        for t, g in enumerate(_gradients(rng, n, 6)):
            opt.update(p, g, st, StepInfo(t, t / 6, t + 1, 0, n, 0.0))
        res.append((p, st.m, st.v))
    for a, b in zip(*res):
        np.testing.assert_array_equal(a, b)


@needs_fused
def test_wrong_lengths_are_refused():
    """The loops check their buffers' lengths (a mismatch would read past an array)."""
    from kernels import _fused as native  # built (needs_fused), whatever HALO_FUSED says

    p, g = np.zeros(10, np.float32), np.zeros(9, np.float32)
    with pytest.raises(ValueError, match="g: expected 10 float32"):
        native.adam(p, g, p.copy(), p.copy(), 0.9, 0.1, 0.999, 0.001, 1e-8, 1e-3)
    mlp = (0.0, ((0.0, 1.0, 1.0, 0.0, 0.0),))
    one = np.ones(1)
    halo = native.halo_step
    with pytest.raises(ValueError, match="bounds must run from 0 to n"):
        halo(p, p.copy(), p.copy(), p.copy(), 0.9, 0.999, mlp, 0.9, 0.999, 1e-8,
             ((0, 10, 1, np.array([0, 9], np.int64), one, one),))
    with pytest.raises(ValueError, match=r"run \[0, 11\) at count 1 outside"):
        halo(p, p.copy(), p.copy(), p.copy(), 0.9, 0.999, mlp, 0.9, 0.999, 1e-8,
             ((0, 11, 1, np.array([0, 11], np.int64), one, one),))


def _libm_is_numpys() -> bool:
    """NumPy's float64 log and exp are the C library's on this build (the compiled
    controller calls the C library; NumPy builds for AVX-512 vectorise their own)."""
    import math

    x = np.random.default_rng(0).uniform(-30.0, 30.0, 4096)
    y = np.abs(x) + 1e-9
    return bool(np.array_equal(np.exp(x), [math.exp(v) for v in x])
                and np.array_equal(np.log(y), [math.log(v) for v in y]))


def _train(weights, arch: str, sparse: bool, native: bool, monkeypatch):
    from kernels.sparsity import parse_sparsity
    from models.halo.optimizer import default_sparsity, make_halo, net_layout
    from models.nets import build_network
    from models.train import Trainer

    monkeypatch.setenv(fused.ENV, "1" if native else "0")
    shape = (12,) if arch == "mlp" else (16, 16, 1)
    net = build_network(arch, shape, 3, seed=0)
    opt = make_halo(None, weights=weights, kernel="elementwise", layout=net_layout(net))
    probs = parse_sparsity(default_sparsity({"weights": weights}), net.n_layers) if sparse else None
    tr = Trainer(net, opt, probs, seed=2)
    assert (tr.state.tensors.ctrl.native is not None) == native
    rng = np.random.default_rng(0)
    for t in range(60):
        x = rng.standard_normal((16, *shape)).astype(np.float32)
        tr.step(x, rng.integers(0, 3, 16), t, t / 60)
    ctrl = tr.state.tensors.ctrl
    return net.params.data, tr.state.m, tr.state.v, ctrl.fin, ctrl.stat_term


@needs_fused
@pytest.mark.parametrize("weights", [str(p) for p in shipped_versions().values()],
                         ids=list(shipped_versions()))
@pytest.mark.parametrize("case", ["mlp-dense", "mlp-sparse", "cnn-b-sparse"])
def test_halo_training_fused_is_numpy(weights, case, monkeypatch):
    """Whole HALO training runs (kernel, the controller's statistics, finish and scalars
    compiled) against the NumPy path: bit for bit where NumPy's log/exp are the C
    library's, else within float32 rounding."""
    arch, mode = case.rsplit("-", 1)
    got = _train(weights, arch, mode == "sparse", True, monkeypatch)
    want = _train(weights, arch, mode == "sparse", False, monkeypatch)
    exact = _libm_is_numpys()
    for a, b, what in zip(got, want, ("params", "m", "v", "statistics", "stat_term")):
        if exact:
            np.testing.assert_array_equal(a, b, err_msg=what)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=what)


@needs_fused
def test_controller_scalars_with_runs_fused_is_numpy(monkeypatch):
    """The per-run shared part (adjacent layers at different counts) in the compiled path."""
    from models.halo.controller import Controller

    w = load_weights(shipped_versions()["halo-v2"])
    out = []
    for native in (True, False):
        monkeypatch.setenv(fused.ENV, "1" if native else "0")
        ctrl = Controller(w.theta, w.log_clip, [100, 50, 30, 8], [1.0, 0.3, -0.3, -1.0])
        ctrl.begin_step(7, 0.8)
        ctrl.stat_term[...] = np.random.default_rng(1).standard_normal((2, 4))
        out.append(ctrl.scalars(slice(0, 4), 5, 0.4, ([3, 7], [(0, 2), (2, 4)])))
    for a, b in zip(*out):
        if _libm_is_numpys():
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-14)


def test_kernel_pickles(monkeypatch):
    """A kernel with the compiled loop pickles (process pools) and keeps using it."""
    import pickle

    k = ElementwiseKernel(MLPS["halo-v2"], B1, B2, EPS, 64)
    k2 = pickle.loads(pickle.dumps(k))
    assert k2.implementation == k.implementation
    p = np.ones(64, np.float32)
    k2.update(p, np.full(64, 0.1, np.float32), np.zeros(64, np.float32), np.zeros(64, np.float32), 1,
              [(0, 64, 1e-2, 1.0)])
    assert np.all(p < 1.0)


@needs_fused
def test_non_float32_arrays_are_refused_or_take_the_chain(monkeypatch):
    """The compiled loops read raw float32: HALO refuses other dtypes (naming them), Adam's
    update sends them to the ufunc chain, which casts."""
    monkeypatch.setenv(fused.ENV, "1")
    k = ElementwiseKernel(adam_like(), B1, B2, EPS, 8)
    p64 = np.zeros(8)
    with pytest.raises(TypeError, match="float32, got float64"):
        k.update(p64, np.ones(8), np.zeros(8), np.zeros(8), 1, [(0, 8, 1e-2, 1.0)])
    opt = adam(1e-2)
    st = opt.init(8)
    p = np.zeros(8, np.float32)
    opt.update(p, np.ones(8), st, StepInfo(0, 0.0, 1, 0, 8, 0.0))  # float64 gradient
    assert np.all(p < 0)
