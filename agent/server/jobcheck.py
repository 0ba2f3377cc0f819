"""Checks of a job request that need more than its own fields: the model it will train
(its input shape, class count and trainable layers) against its data and sparsity.

Run at submission, so a job that cannot run is refused with 422 naming the field
and the value instead of being queued and failing later.
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

from agent.errors import ConfigError

Shape = Tuple[int, ...]


def model_shape(request: Dict[str, Any]) -> Tuple[str, Shape, int, int]:
    """``(what, input_shape, num_classes, n_layers)`` of the model a job will start
    from: the task's source model of architecture ``model`` (default: the task's)."""
    from models.data import get_task
    from models.nets import Network

    spec = get_task(request["task"])
    arch = request.get("model") or spec.default_model
    net = Network(arch, spec.input_shape, spec.num_classes)
    return f"model {arch!r}", tuple(spec.input_shape), spec.num_classes, net.n_layers


def check_sparsity(sparsity: Any, n_layers: int, what: str) -> None:
    """``ConfigError`` (422 naming ``sparsity``) unless the engine accepts ``sparsity``
    for a model with ``n_layers`` trainable layers."""
    if sparsity is None:
        return
    from kernels.sparsity import parse_sparsity

    try:
        parse_sparsity(sparsity, n_layers)
    except ValueError as e:
        raise ConfigError("sparsity", sparsity,
                          f"a scheme that fits {what} ({n_layers} trainable layers): {e}"
                          ) from None


def check_request(request: Dict[str, Any]) -> None:
    """Every cross-field check of a validated request; ``ConfigError`` on the first
    failure."""
    what, _, _, n_layers = model_shape(request)
    check_sparsity(request.get("sparsity"), n_layers, what)
