"""The adaptation engine: one loop joining a model, target data, an optimizer, a power
meter and budgets into an accuracy-vs-energy curve.

Used by ``halo-agent adapt``, the daemon's job runner and the benchmarks, so all
three measure the same thing.  Energy accounting:

- ``joules``: energy of the training steps only, from the power sampler's window
  over the run minus nested windows over each evaluation (evaluation is the
  same work for every optimizer and is not part of adapting);
- ``joules_total``: the same window with evaluations included;
- ``joules_above_idle``: ``joules`` minus idle power x training seconds, when an
  idle baseline was measured before the job.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np
from threadpoolctl import threadpool_limits

from agent.energysplit import energy_split
from agent.errors import ConfigError
from agent.memory import peak_rss_mb
from agent.progress import ProgressBar
from agent.start import load_start
from kernels.sparsity import parse_sparsity
from models.checkpoint import save_model
from models.data import get_task
from models.nets import architectures
from models.onnx import OnnxNetwork, check_output_path, is_onnx_path, restrict_trainable, save_onnx_model
from models.onnx.ort import OrtEvaluator
from models.registry import build_optimizer, default_sparsity, optimizer_names
from models.train import Trainer, batch_indices, hold_out_validation
from power import Sampler, detect
from power.runrecord import run_record

MAX_STEPS = 10_000_000


@dataclass
class AdaptConfig:
    """One adaptation job.  Budgets: the run stops at the first one reached."""

    task: str
    data_dir: Path
    model: Optional[str] = None            # architecture; None = the task's default
    model_path: Optional[Path] = None      # start from this model file, not the task's source checkpoint
    dataset_id: Optional[str] = None       # adapt on this stored user dataset, not the task's target
    optimizer: str = "adam"
    lr: Optional[float] = None             # None = the optimizer's default
    hyperparameters: Dict[str, Any] = field(default_factory=dict)
    steps: Optional[int] = 300
    seconds: Optional[float] = None        # budget in seconds of training
    joules: Optional[float] = None         # budget in joules of training
    target_accuracy: Optional[float] = None  # fraction 0..1 on the target test split
    eval_every: int = 25
    seed: int = 0
    sparsity: Optional[str] = None         # per-layer update probabilities, or "halo" / "dense"
    power_source: Optional[str] = None     # a power source spec; None = auto-detect
    sysfs_root: Path = Path("/sys")
    idle_seconds: float = 1.0              # idle-baseline measurement before the run (0: none)
    threads: int = 1                       # BLAS threads
    output_model: Optional[Path] = None    # where to write the adapted model (never the source)
    eval_backend: str = "numpy"            # "ort": evaluate an imported ONNX model with onnxruntime

    def __post_init__(self) -> None:
        if self.model is not None and is_onnx_path(self.model):  # --model FILE.onnx names a file
            self.model_path, self.model = Path(self.model), None

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the field and value of the first bad setting."""
        if not (self.dataset_id and self.model_path is not None):
            get_task(self.task)  # raises DataError naming the task
        if self.model is not None and self.model not in architectures():
            raise ConfigError("model", self.model, f"one of {architectures()}")
        if self.optimizer not in optimizer_names():
            raise ConfigError("optimizer", self.optimizer, f"one of {optimizer_names()}")
        if self.eval_backend not in ("numpy", "ort"):
            raise ConfigError("eval_backend", self.eval_backend, "'numpy' or 'ort'")
        if self.eval_backend == "ort" and not (self.model_path and is_onnx_path(self.model_path)):
            raise ConfigError("eval_backend", self.eval_backend, "'numpy' unless the model is an .onnx file")
        if self.lr is not None and not (isinstance(self.lr, (int, float)) and 0 < self.lr < 1e3
                                        and math.isfinite(self.lr)):
            raise ConfigError("lr", self.lr, "a positive number below 1000")
        if self.steps is not None and not (isinstance(self.steps, int) and 0 < self.steps <= MAX_STEPS):
            raise ConfigError("steps", self.steps, f"an integer in 1..{MAX_STEPS}")
        for name in ("seconds", "joules"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and 0 < v < 1e9 and math.isfinite(v)):
                raise ConfigError(name, v, "a positive number")
        if self.target_accuracy is not None and not (0 < self.target_accuracy <= 1):
            raise ConfigError("target_accuracy", self.target_accuracy, "a fraction in (0, 1]")
        if self.steps is None and self.seconds is None and self.joules is None:
            raise ConfigError("budget", None, "at least one of steps, seconds, joules")
        if not (isinstance(self.eval_every, int) and self.eval_every >= 1):
            raise ConfigError("eval_every", self.eval_every, "an integer >= 1")
        if not (isinstance(self.threads, int) and 1 <= self.threads <= 256):
            raise ConfigError("threads", self.threads, "an integer in 1..256")
        if not (0 <= self.idle_seconds <= 60):
            raise ConfigError("idle_seconds", self.idle_seconds, "seconds in 0..60")
        if Path(self.data_dir).exists() and not Path(self.data_dir).is_dir():
            raise ConfigError("data_dir", str(self.data_dir), "a directory, not a file")
        if self.output_model is not None:
            check_writable_file("output_model", Path(self.output_model))


def check_writable_file(field: str, path: Path) -> None:
    """``ConfigError`` naming ``field`` unless a file can be written at ``path`` (its
    nearest existing folder is writable and ``path`` is not a folder): checked before
    a run, so a bad output path does not waste the run."""
    if path.is_dir():
        raise ConfigError(field, str(path), "a file path, not a directory")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir() or not os.access(str(folder), os.W_OK | os.X_OK):
        raise ConfigError(field, str(path), f"a path this user can write ({folder} is not a "
                                            "writable directory)")
    if path.exists() and not os.access(str(path), os.W_OK):
        raise ConfigError(field, str(path), "a file this user can write")


@dataclass
class Point:
    """One point of the curve.  ``loss``: mean training loss (nats) of the batches
    since the previous point (at step 0: the loss over a fixed probe of the target
    train split); ``accuracy``/``test_loss``: on the target test split."""

    step: int
    seconds: float
    joules: float
    loss: float
    accuracy: float
    test_loss: float
    joules_above_idle: Optional[float] = None


class StopRequested(Exception):
    """Raised inside the loop when ``should_stop`` says so (a cancel)."""


def _progress(cfg: AdaptConfig, step: int, seconds: float, joules: float) -> float:
    fr = [0.0]
    if cfg.steps:
        fr.append(step / cfg.steps)
    if cfg.seconds:
        fr.append(seconds / cfg.seconds)
    if cfg.joules:
        fr.append(joules / cfg.joules)
    return min(1.0, max(fr))


def run_adaptation(cfg: AdaptConfig, *, sampler: Optional[Sampler] = None,
                   on_point: Optional[Callable[[Point], None]] = None,
                   should_stop: Optional[Callable[[], bool]] = None,
                   log: Optional[Callable[[str], None]] = None,
                   progress: bool = False) -> Dict[str, Any]:
    """Adapt the task's source model to its target domain; the report as a dict.

    ``sampler``: a running power sampler to use (None: detect a meter and run one
    for the duration).  ``on_point`` is called for every curve point as it is
    made, ``should_stop`` before every step (True: stop, status ``cancelled``).
    """
    cfg.validate()
    return measured(cfg, sampler, lambda s: _run(cfg, s, on_point, should_stop, log, progress))


def measured(cfg: Any, sampler: Optional[Sampler],
             body: Callable[[Sampler], Dict[str, Any]]) -> Dict[str, Any]:
    """``body(sampler)`` with ``cfg.threads`` BLAS threads, on ``sampler`` or (None) on a
    sampler of the meter detected from ``cfg.power_source``/``cfg.sysfs_root`` for the
    duration; its report gets ``run_record`` (and ``power_skipped`` when detected here).
    Shared by the engine and the tuner (``agent.tune``)."""
    with threadpool_limits(limits=cfg.threads):
        record = run_record(cfg.sysfs_root, cfg.threads)  # board state at the start
        if sampler is not None:
            return dict(body(sampler), run_record=record)
        meter, skipped = detect(spec=cfg.power_source, sysfs_root=cfg.sysfs_root)
        with Sampler(meter) as own:
            report = body(own)
        report["power_skipped"] = [{"source": s, "reason": r} for s, r in skipped]
        report["run_record"] = record
        return report


def _run(cfg, sampler, on_point, should_stop, log, progress) -> Dict[str, Any]:
    spec, data, net, arch, source_path = load_start(cfg, log)
    if cfg.output_model is not None and Path(cfg.output_model).resolve() == source_path.resolve():
        raise ConfigError("output_model", str(cfg.output_model), "a path other than the source model")
    scheme = cfg.sparsity or default_sparsity(cfg.optimizer, cfg.hyperparameters)
    net = restrict_trainable(net, scheme)  # "bias": an imported model with only biases and classifier
    if cfg.output_model is not None and isinstance(net, OnnxNetwork):
        check_output_path(net, cfg.output_model)
    evaluate = OrtEvaluator(net, cfg.threads).evaluate if cfg.eval_backend == "ort" else net.evaluate
    probs = parse_sparsity(scheme, net.n_layers) if scheme else None
    opt = build_optimizer(cfg.optimizer, cfg.lr, net, cfg.hyperparameters, data_dir=cfg.data_dir)
    # a learned optimizer with a validation level trains on the rest of the split
    xt, yt, validation = hold_out_validation(opt, data.target_train.x, data.target_train.y,
                                             net.num_classes, cfg.seed, cfg.steps, spec.batch_size)
    trainer = Trainer(net, opt, probs, seed=cfg.seed, validation=validation)
    meter = sampler.meter

    xe, ye = data.target_test.x, data.target_test.y
    probe = slice(0, min(1024, xt.shape[0]))

    idle_w = sampler.measure_idle(cfg.idle_seconds) if cfg.idle_seconds > 0 else None
    init_acc, init_test_loss = evaluate(xe, ye)
    _, probe_loss = evaluate(xt[probe], yt[probe])

    points: List[Point] = []
    eval_j = 0.0    # energy spent in evaluations (excluded from `joules`)
    eval_s = 0.0
    run = sampler.open_window()
    t0 = time.monotonic()

    def train_clock():
        # energy and time read together: the window's energy is held from its latest
        # reading up to now, so a point's joules and seconds describe the same instant.
        # An evaluation's nested window can count energy past the run window's latest
        # reading (at most one sampler interval), so the difference may dip below the
        # previous point's: training energy is cumulative, so it never goes back.
        secs = time.monotonic() - t0 - eval_s
        floor = points[-1].joules if points else 0.0
        return secs, max(floor, run.energy_now_j() - eval_j)

    def add_point(step, loss):
        nonlocal eval_j, eval_s
        secs, joules = train_clock() if step else (0.0, 0.0)
        w = sampler.open_window()
        te = time.monotonic()
        acc, tloss = evaluate(xe, ye)
        eval_s += time.monotonic() - te
        eval_j += w.close().energy_j
        above = None if idle_w is None else joules - idle_w * secs
        pt = Point(step, round(secs, 6), round(joules, 6), float(loss), float(acc), float(tloss),
                   None if above is None else round(above, 6))
        points.append(pt)
        if on_point is not None:
            on_point(pt)
        return pt

    add_point(0, probe_loss)
    bar = ProgressBar(total=cfg.steps, enabled=progress)
    status, stop_reason = "succeeded", "steps"
    good = net.params.data.copy()
    losses: List[float] = []
    step = 0
    it = batch_indices(xt.shape[0], spec.batch_size, cfg.seed)
    try:
        while True:
            secs, joules = train_clock()
            if cfg.steps is not None and step >= cfg.steps:
                stop_reason = "steps"
                break
            if cfg.seconds is not None and secs >= cfg.seconds:
                stop_reason = "seconds"
                break
            if cfg.joules is not None and joules >= cfg.joules:
                stop_reason = "joules"
                break
            if should_stop is not None and should_stop():
                raise StopRequested()
            idx = next(it)
            loss = trainer.step(xt[idx], yt[idx], step, _progress(cfg, step, secs, joules))
            step += 1
            if loss is not None:
                if not math.isfinite(loss):
                    status, stop_reason = "diverged", f"loss is {loss} at step {step}"
                    break
                losses.append(loss)
            if step % cfg.eval_every == 0:
                if not np.all(np.isfinite(net.params.data)):
                    status, stop_reason = "diverged", f"non-finite parameters at step {step}"
                    break
                pt = add_point(step, np.mean(losses) if losses else points[-1].loss)
                losses = []
                good[...] = net.params.data
                bar.update(step, f"acc {pt.accuracy:.3f} {pt.joules:.1f} J")
                if cfg.target_accuracy is not None and pt.accuracy >= cfg.target_accuracy:
                    stop_reason = "target_accuracy"
                    break
    except StopRequested:
        status, stop_reason = "cancelled", "cancelled"
    bar.close()
    if status == "diverged":
        net.params.data[...] = good  # keep the last good checkpoint
    elif points[-1].step != step:
        add_point(step, np.mean(losses) if losses else points[-1].loss)
    total = run.close()
    secs, joules = points[-1].seconds, points[-1].joules

    model_path = None
    if cfg.output_model is not None:
        save = save_onnx_model if isinstance(net, OnnxNetwork) else save_model
        model_path = str(save(Path(cfg.output_model), net, {
            "task": spec.name, "role": "adapted", "source_model": str(source_path),
            "optimizer": opt.name, "seed": cfg.seed, "steps": step,
            "accuracy": points[-1].accuracy, "status": status}))
    energy_info = {"energy_source": meter.source, "estimated": bool(meter.estimated),
                   "energy_profile": meter.profile, "energy_attribution": meter.attribution,
                   "energy_covers": meter.covers}
    return {
        "task": spec.name, "model": arch, "optimizer": opt.name,
        "hyperparameters": dict(opt.hyperparameters, batch_size=spec.batch_size,
                                sparsity=None if probs is None else [float(p) for p in probs]),
        "seed": cfg.seed,
        "initial_accuracy": float(init_acc), "final_accuracy": points[-1].accuracy,
        "initial_test_loss": float(init_test_loss), "final_test_loss": points[-1].test_loss,
        "steps": step, "seconds": secs, "joules": joules,
        **energy_info,
        "joules_total": round(total.energy_j, 6), "seconds_total": round(total.seconds, 6),
        "idle_w": idle_w,
        "joules_above_idle": None if idle_w is None else round(joules - idle_w * secs, 6),
        "energy_gaps": [list(g) for g in total.gaps],
        "layer_updates": trainer.layer_updates,
        "energy_split": energy_split(trainer.seconds, secs, joules, total.energy_j),
        "peak_rss_mb": peak_rss_mb(),  # this process's peak so far (agent.memory)
        "validation": None if validation is None else {
            "examples_held_out": len(validation), "examples_trained_on": int(yt.shape[0]),
            "probes": trainer.val_probes, "planned_epochs": validation.planned_epochs,
            "duplication_skew": validation.duplication_skew,
            "rollback": validation.rollback, "rollbacks": validation.rollbacks,
            "note": "held out of the target training split for the optimizer's validation level; "
                    "measured probes are inside the training energy; rollback > 0: the "
                    "parameters of the best probe are restored when a probe is worse by more "
                    "than that (log ratio)"},
        "status": status, "stop_reason": stop_reason,
        "source_model": str(source_path), "model_path": model_path,
        "data_notes": list(data.notes),
        "points": [asdict(p) for p in points],
    }
