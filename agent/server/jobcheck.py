"""Checks of a job request that need more than its own fields: the model it will train
(its input shape, class count and trainable layers) against its data and sparsity.

Run at submission, so a job that cannot run is refused with 422 naming the field
and the value instead of being queued and failing later.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, Dict, Tuple

from agent.errors import ConfigError

Shape = Tuple[int, ...]
USE_LOCK = threading.Lock()
"""Held while a job naming an upload is checked and stored, and while an upload is
deleted, so a dataset is never deleted between a job's check and its creation."""


def model_shape(request: Dict[str, Any], data_dir: Path) -> Tuple[str, Shape, int, int]:
    """``(what, input_shape, num_classes, n_layers)`` of the model a job will start
    from: the uploaded ``model_id``, or the task's source model of architecture
    ``model`` (default: the task's)."""
    if request.get("model_id"):
        from models.user_models import read_manifest

        m = _known(read_manifest, data_dir, request["model_id"])
        return (f"model_id {request['model_id'][:12]}...", tuple(m["input_shape"]),
                int(m["num_classes"]), int(m["n_layers"]))
    from models.data import get_task
    from models.nets import ModelError, Network

    spec = get_task(request["task"])
    arch = request.get("model") or spec.default_model
    try:
        net = Network(arch, spec.input_shape, spec.num_classes)
    except ModelError as e:  # e.g. a CNN on a tabular task: 422 naming the model, not a 500
        raise ConfigError("model", arch, f"an architecture for task {spec.name!r}, whose input "
                                         f"is {tuple(spec.input_shape)} ({e})") from None
    return f"model {arch!r}", tuple(spec.input_shape), spec.num_classes, net.n_layers


def data_shape(request: Dict[str, Any], data_dir: Path) -> Tuple[str, Shape, int]:
    """``(what, input_shape, num_classes)`` of the data a job adapts on."""
    if request.get("dataset_id"):
        from models.data.user import read_manifest

        m = _known(read_manifest, data_dir, request["dataset_id"])
        return (f"dataset_id {request['dataset_id'][:12]}... ({m['name']!r})",
                tuple(m["input_shape"]), int(m["num_classes"]))
    from models.data import get_task

    spec = get_task(request["task"])
    return f"task {spec.name!r}", tuple(spec.input_shape), spec.num_classes


def _known(read: Callable[[Path, str], Dict[str, Any]], data_dir: Path, item: str
           ) -> Dict[str, Any]:
    try:
        return read(data_dir, item)
    except ValueError as e:  # unknown id: the error names the field and the value
        field = getattr(e, "field", "id")
        raise ConfigError(field, item, f"the id of an uploaded item ({e})") from None


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


def check_request(request: Dict[str, Any], data_dir: Path) -> None:
    """Every cross-field check of a validated request; ``ConfigError`` on the first
    failure: the model's input shape and class count must fit the data's, and the
    sparsity the model's layers."""
    what, shape, classes, n_layers = model_shape(request, data_dir)
    data_what, data_in, data_classes = data_shape(request, data_dir)
    if (shape, classes) != (data_in, data_classes):
        field = next((f for f in ("model_id", "dataset_id", "model") if request.get(f)), "task")
        raise ConfigError(field, request[field],
                          f"a model that fits the data: {what} has input {shape} and "
                          f"{classes} classes; {data_what} has input {data_in} and "
                          f"{data_classes} classes")
    check_sparsity(request.get("sparsity"), n_layers, what)
