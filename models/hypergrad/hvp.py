"""Loss, gradient and Hessian-vector product of a built-in network in one forward-over-reverse pass.

``loss_grad_hvp(net, x, y, r)`` walks the network's layers with the R-operator
kernels of :mod:`kernels.hvp`: the gradient is over every trainable layer (no
structural-sparsity stop: the Hessian couples every layer), ``r`` is a direction in
the flat parameter buffer.  A network holding a layer with no R-operator is refused
with :class:`NoHVPError` naming it.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from kernels import hvp as H
from models import nets
from models.nets import ModelError, Network


class NoHVPError(ModelError):
    """The network has a layer without a Hessian-vector product; the message names it."""


_KINDS = {nets._Conv: "conv", nets._Dense: "dense", nets._ReLU: "relu", nets._Pool: "pool",
          nets._ReLUPool: "relu_pool", nets._Flatten: "flatten"}


def check_hvp_support(net: Network) -> None:
    """Raise :class:`NoHVPError` unless every layer of ``net`` has an R-operator."""
    for i, layer in enumerate(net.layers):
        if type(layer) not in _KINDS:
            raise NoHVPError(
                f"model {net.arch!r}: layer {i} ({type(layer).__name__.lstrip('_')}) has no "
                f"Hessian-vector product, so hypergradients cannot pass through it; "
                f"supported layers: {', '.join(sorted(set(_KINDS.values())))}")


def _param_views(net: Network, layer, flat: np.ndarray):
    """The layer's parameters in ``flat`` (n,), in the layout its kernels take."""
    p = net.params
    if isinstance(layer, nets._Conv):
        lo, hi = p.offsets[f"{layer.name}.w"][0], p.offsets[f"{layer.name}.b"][1]
        return (flat[lo:hi].reshape(layer.wb.shape),)
    (wlo, whi), (blo, bhi) = p.offsets[f"{layer.name}.w"], p.offsets[f"{layer.name}.b"]
    return flat[wlo:whi].reshape(layer.fin, layer.fout), flat[blo:bhi]


def loss_grad_hvp(net: Network, x: np.ndarray, y: np.ndarray,
                  r: np.ndarray) -> Tuple[float, np.ndarray, np.ndarray]:
    """Mean softmax-CE loss (nats), its gradient and ``H r`` at the network's parameters.

    x: (N, *input_shape); y: (N,) class ids; r: (n_params,) direction.  Returns
    ``(loss, grad (n_params,), hr (n_params,))`` in the parameters' dtype.
    """
    check_hvp_support(net)
    data = net.params.data
    r = np.asarray(r, dtype=data.dtype)
    h = net._prep(x)
    rh = None
    caches = []
    for layer in net.layers:
        kind = _KINDS[type(layer)]
        if kind == "conv":
            (wb,), (rwb,) = _param_views(net, layer, data), _param_views(net, layer, r)
            h, rh, c = H.conv2d_rop_forward(h, rh, wb, rwb, layer.k, layer.padding)
        elif kind == "dense":
            (w, b), (rw, rb) = _param_views(net, layer, data), _param_views(net, layer, r)
            h, rh, c = H.dense_rop_forward(h, rh, w, b, rw, rb)
        elif kind == "relu":
            h, rh, c = H.relu_rop_forward(h, rh)
        elif kind == "pool":
            h, rh, c = H.maxpool2_rop_forward(h, rh)
        elif kind == "relu_pool":
            h, rh, pc = H.maxpool2_rop_forward(h, rh)
            h, rh, rc = H.relu_rop_forward(h, rh)
            c = (pc, rc)
        else:
            c = h.shape
            h = h.reshape(h.shape[0], -1)
            rh = None if rh is None else rh.reshape(h.shape)
        caches.append(c)
    loss, d, rd = H.softmax_ce_rop(h, rh, y)
    grad, hr = np.zeros_like(data), np.zeros_like(data)
    first = net.trainable[0]
    for i in range(len(net.layers) - 1, first - 1, -1):
        layer, c = net.layers[i], caches[i]
        kind = _KINDS[type(layer)]
        need = i > first
        if kind == "conv":
            dwb, rdwb, d, rd = H.conv2d_rop_backward(d, rd, c, need)
            _param_views(net, layer, grad)[0][...] = dwb
            _param_views(net, layer, hr)[0][...] = rdwb
        elif kind == "dense":
            dw, rdw, db, rdb, d, rd = H.dense_rop_backward(d, rd, c, need)
            gw, gb = _param_views(net, layer, grad)
            hw, hb = _param_views(net, layer, hr)
            gw[...], gb[...], hw[...], hb[...] = dw, db, rdw, rdb
        elif kind == "relu":
            d, rd = H.relu_rop_backward(d, rd, c)
        elif kind == "pool":
            d, rd = H.maxpool2_rop_backward(d, rd, c)
        elif kind == "relu_pool":
            d, rd = H.relu_rop_backward(d, rd, c[1])
            d, rd = H.maxpool2_rop_backward(d, rd, c[0])
        else:
            d, rd = d.reshape(c), rd.reshape(c)
    return loss, grad, hr
