"""Turn a stored job request into the engine's ``AdaptConfig``."""

from __future__ import annotations

from typing import Any, Dict

from agent.server.settings import Settings


def budget_fraction(budget: Dict[str, Any], step: int, seconds: float, joules: float) -> float:
    """Fraction 0..1 of the budget used after ``step`` steps, ``seconds`` s and
    ``joules`` J of training: the largest of the three ratios that have a limit."""
    fr = [0.0]
    for key, used in (("steps", step), ("seconds", seconds), ("joules", joules)):
        limit = budget.get(key)
        if limit:
            fr.append(float(used) / float(limit))
    return min(1.0, max(fr))


def build_config(request: Dict[str, Any], settings: Settings, job_id: str) -> Any:
    """The ``agent.engine.AdaptConfig`` of a validated request (see ``schemas``).

    Budget fields map one to one; a request without ``steps`` gets the server's
    ``max_steps`` as its step cap, so only its seconds/joules budget stops it in
    practice.  The adapted model goes to ``DATA_DIR/models/adapted-<id>.npz``,
    never over the source model.  ``model_id`` / ``dataset_id`` name an uploaded
    model (its stored file becomes ``model_path``) and an uploaded dataset.
    """
    if request.get("tune"):  # the tuning job kind
        from agent.server.tune_job import tune_config

        return tune_config(request, settings, job_id)
    from agent.engine import AdaptConfig

    b = request.get("budget") or {}
    model_path = None
    if request.get("model_id"):
        from models.user_models import model_path as stored_model

        model_path = stored_model(settings.data_dir, request["model_id"])
    return AdaptConfig(
        task=request.get("task") or "", data_dir=settings.data_dir, model=request.get("model"),
        model_path=model_path, dataset_id=request.get("dataset_id"),
        optimizer=request["optimizer"], lr=request.get("lr"),
        steps=b.get("steps") or settings.max_steps, seconds=b.get("seconds"),
        joules=b.get("joules"), target_accuracy=b.get("target_accuracy"),
        eval_every=request.get("eval_every") or 25, seed=request.get("seed") or 0,
        sparsity=request.get("sparsity"), power_source=settings.power_source,
        sysfs_root=settings.sysfs_root, idle_seconds=settings.idle_seconds,
        threads=settings.threads,
        output_model=settings.model_path(job_id, ".onnx" if model_path is not None
                                         and model_path.suffix == ".onnx" else ".npz"))
