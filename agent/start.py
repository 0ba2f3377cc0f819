"""What an adaptation starts from: its data (a built-in task's target domain or a user's
stored dataset) and its model (the task's source checkpoint or a model file), checked
against each other before any training."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional, Tuple

from agent.errors import ConfigError
from models.user_models import load_model_file


def describe_fit(net: Any) -> str:
    return f"input {tuple(net.input_shape)} and {net.num_classes} classes"


def load_start(cfg: Any, log: Optional[Callable[[str], None]] = None
               ) -> Tuple[Any, Any, Any, str, Path]:
    """``(spec, data, net, arch, source_path)`` of a job.

    Data: ``cfg.dataset_id``'s stored dataset, else the task's target domain.
    Model: ``cfg.model_path``, else the task's source checkpoint (architecture
    ``cfg.model`` or the task's).  The model's input shape and class count must fit
    the data; a model file whose header names another task is refused for a task.
    """
    from models.data import load_task
    from models.pretrain import checkpoint_path, load_source_model

    dataset_id = getattr(cfg, "dataset_id", None)
    if dataset_id:
        from models.data.user import load_user_task

        data = load_user_task(cfg.data_dir, dataset_id)
    else:
        data = load_task(cfg.task, cfg.data_dir)
    spec = data.spec
    if cfg.model_path is not None:
        net, header = load_model_file(cfg.model_path)
        source_path = Path(cfg.model_path)
        made_for = header.get("task")
        if not dataset_id and made_for is not None and made_for != spec.name:
            raise ConfigError("model_path", str(cfg.model_path),
                              f"a model made for task {spec.name!r}; its header names task "
                              f"{made_for!r}")
    else:
        task_data = data
        if dataset_id:  # the task's source checkpoint, pretrained on the task's own data
            task_data = load_task(cfg.task, cfg.data_dir)
        arch = cfg.model or task_data.spec.default_model
        net = load_source_model(task_data, arch, cfg.data_dir, log=log)
        source_path = checkpoint_path(cfg.data_dir, task_data.spec.name, arch)
    if tuple(net.input_shape) != tuple(spec.input_shape) or net.num_classes != spec.num_classes:
        field = "model_path" if cfg.model_path is not None else "model"
        raise ConfigError(field, str(source_path),
                          f"a model with input {tuple(spec.input_shape)} and {spec.num_classes} "
                          f"classes for {spec.name}; this one has {describe_fit(net)}")
    return spec, data, net, net.arch, source_path
