"""``halo-agent tune --method hypergrad``: tune a momentum schedule on the board from exact
hypergradients (reversible learning), then adapt with it; tuning joules reported apart.

Protocol:

1. A validation set is split off the target's **training** split (a seeded
   ``validation_fraction``, at most ``max_validation`` examples); the test split is
   never read while tuning.  The remaining examples give the T training batches
   (the engine's seeded batch order) and the sparsity masks (the engine's mask stream).
2. Start: the learning rate ``lr`` for every layer and block (default 0.01, the
   momentum optimizer's default) and decay ``momentum`` (0.9) for every block.
3. K meta-steps: the hypergradient of the validation loss after T steps
   (:func:`models.hypergrad.unroll.hypergradient`, about three training runs of work),
   then one Adam step (``meta_lr`` on the log learning rates and on the decays' logits).
   An unroll that diverges (leaves the fixed-point range) is not a gradient: its
   learning rates are divided by 4 and the meta-step counts.
4. The schedule with the lowest validation loss seen is saved (``schedule.json``),
   plotted per layer over the steps (``schedule.png``, matplotlib optional) and used by
   the engine to adapt for T steps (optimizer ``momentum-schedule``) on the whole
   target training split; that run's report is the result, with ``tuning`` holding the
   meta-steps, their joules (from the same power source) and seconds.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from agent.engine import AdaptConfig, StopRequested, measured, run_adaptation
from agent.errors import ConfigError
from agent.progress import ProgressBar
from kernels.reversible import ReversibleOverflow
from kernels.sparsity import draw_mask, parse_sparsity
from models.data import get_task, load_task
from models.hypergrad.hvp import check_hvp_support
from models.hypergrad.schedule import FORMAT, NAME
from models.hypergrad.unroll import Schedule, hypergradient
from models.nets import architectures
from models.pretrain import load_source_model
from models.train import batch_indices
from power import Sampler

METHODS = ("hypergrad",)
OPTIMIZERS = ("momentum",)
MAX_STEPS = 5000        # T: the buffer and the reverse pass grow with it
MAX_META_STEPS = 500    # K
MIN_VALIDATION = 32     # examples
LR_RANGE = (1e-6, 1.0)
DECAY_RANGE = (0.5, 0.99)


@dataclass
class TuneConfig:
    """One tuning job (see the module docstring); T = ``steps``, K = ``meta_steps``."""

    task: str
    data_dir: Path
    model: Optional[str] = None
    method: str = "hypergrad"
    optimizer: str = "momentum"
    steps: int = 100
    meta_steps: int = 10
    blocks: int = 4                 # time blocks of the schedule
    lr: float = 0.01                # start learning rate, every layer and block
    momentum: float = 0.9           # start decay, every block
    meta_lr: float = 0.3            # Adam step on log lr and decay logits
    tune_momentum: bool = True
    validation_fraction: float = 0.2
    max_validation: int = 512
    seed: int = 0
    sparsity: Optional[str] = None
    eval_every: int = 25
    power_source: Optional[str] = None
    sysfs_root: Path = Path("/sys")
    idle_seconds: float = 1.0
    threads: int = 1
    out_dir: Optional[Path] = None       # schedule.json, schedule.png, report.json
    output_model: Optional[Path] = None

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first bad setting."""
        get_task(self.task)
        if self.method not in METHODS:
            raise ConfigError("method", self.method, f"one of {', '.join(METHODS)}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError("optimizer", self.optimizer,
                              f"one of {', '.join(OPTIMIZERS)} (hypergradients run through "
                              "SGD with momentum)")
        if self.model is not None and self.model not in architectures():
            raise ConfigError("model", self.model, f"one of {architectures()}")
        _int_in("steps", self.steps, 1, MAX_STEPS)
        _int_in("meta_steps", self.meta_steps, 1, MAX_META_STEPS)
        _int_in("blocks", self.blocks, 1, self.steps if isinstance(self.steps, int) else 1)
        _num_in("lr", self.lr, *LR_RANGE)
        _num_in("momentum", self.momentum, *DECAY_RANGE)
        _num_in("meta_lr", self.meta_lr, 1e-4, 5.0)
        _num_in("validation_fraction", self.validation_fraction, 0.01, 0.5)
        _int_in("max_validation", self.max_validation, MIN_VALIDATION, 100_000)
        _int_in("eval_every", self.eval_every, 1, 10**9)
        _int_in("threads", self.threads, 1, 256)
        _num_in("idle_seconds", self.idle_seconds, 0.0, 60.0)


def _int_in(name: str, v: Any, lo: int, hi: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ConfigError(name, v, f"an integer in {lo}..{hi}")


def _num_in(name: str, v: Any, lo: float, hi: float) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (lo <= v <= hi):
        raise ConfigError(name, v, f"a number in [{lo:g}, {hi:g}]")


def split_validation(n: int, fraction: float, max_validation: int, batch_size: int,
                     seed: int, task: str) -> Tuple[np.ndarray, np.ndarray]:
    """Seeded ``(train_idx, val_idx)`` of a training split of ``n`` examples.

    Raises :class:`ConfigError` on ``task`` when either part would be too small: the
    validation set needs ``MIN_VALIDATION`` examples and the rest one batch.
    """
    n_val = min(max_validation, int(round(fraction * n)))
    if n_val < MIN_VALIDATION or n - n_val < batch_size:
        raise ConfigError("task", task,
                          f"a target training split large enough to split off a validation "
                          f"set: it has {n} examples, {fraction:g} of them is {n_val} "
                          f"(at least {MIN_VALIDATION} needed) and the rest must hold a batch "
                          f"of {batch_size}")
    perm = np.random.default_rng([int(seed), 2]).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


class _Batches:
    """The T training batches, sliced on use (the batch order of the engine)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, steps: int, batch_size: int, seed: int):
        it = batch_indices(x.shape[0], batch_size, seed)
        self.x, self.y, self.idx = x, y, [next(it) for _ in range(steps)]

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, t: int) -> Tuple[np.ndarray, np.ndarray]:
        i = self.idx[t]
        return self.x[i], self.y[i]


def _masks(scheme: Optional[str], n_layers: int, steps: int, seed: int) -> np.ndarray:
    """(T, L) update masks from the engine's mask stream (dense when no scheme)."""
    if not scheme:
        return np.ones((steps, n_layers), dtype=bool)
    probs = parse_sparsity(scheme, n_layers)
    rng = np.random.default_rng([int(seed), 1])
    return np.stack([draw_mask(probs, rng) for _ in range(steps)])


class _Adam:
    """Adam on a flat vector of meta-parameters (b1 0.9, b2 0.999, eps 1e-8)."""

    def __init__(self, n: int, lr: float):
        self.m, self.v, self.t, self.lr = np.zeros(n), np.zeros(n), 0, lr

    def step(self, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
        self.t += 1
        self.m = 0.9 * self.m + 0.1 * grad
        self.v = 0.999 * self.v + 0.001 * grad * grad
        mh, vh = self.m / (1 - 0.9 ** self.t), self.v / (1 - 0.999 ** self.t)
        return theta - self.lr * mh / (np.sqrt(vh) + 1e-8)


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


def run_tune(cfg: TuneConfig, *, sampler: Optional[Sampler] = None,
             on_point: Optional[Callable[[Any], None]] = None,
             should_stop: Optional[Callable[[], bool]] = None,
             log: Optional[Callable[[str], None]] = None,
             progress: bool = False) -> Dict[str, Any]:
    """Tune, then adapt with the tuned schedule; the adaptation's report plus ``tuning``.

    Same calling convention as :func:`agent.engine.run_adaptation` (the daemon runs
    either).  ``on_point`` gets the adaptation's curve points.
    """
    cfg.validate()
    return measured(cfg, sampler, lambda s: _run(cfg, s, on_point, should_stop, log, progress))


def tune_schedule(cfg: TuneConfig, sampler: Sampler,
                  should_stop: Optional[Callable[[], bool]] = None,
                  log: Optional[Callable[[str], None]] = None,
                  progress: bool = False) -> Dict[str, Any]:
    """Steps 1-3 of the protocol: ``{"schedule": JSON dict, "tuning": record}``."""
    spec = get_task(cfg.task)
    data = load_task(cfg.task, cfg.data_dir)
    arch = cfg.model or spec.default_model
    net = load_source_model(data, arch, cfg.data_dir, log=log)
    check_hvp_support(net)
    x, y = data.target_train.x, data.target_train.y
    tr, va = split_validation(x.shape[0], cfg.validation_fraction, cfg.max_validation,
                              spec.batch_size, cfg.seed, spec.name)
    batches = _Batches(x[tr], y[tr], cfg.steps, spec.batch_size, cfg.seed)
    val = (x[va], y[va])
    masks = _masks(cfg.sparsity, net.n_layers, cfg.steps, cfg.seed)
    w_init = net.params.data.astype(np.float64)
    sched = Schedule.constant(net.n_layers, cfg.blocks, cfg.lr, cfg.momentum)
    n_lr = sched.log_lr.size
    theta = np.concatenate([sched.log_lr.ravel(), _logit(sched.decay)])
    adam = _Adam(theta.size, cfg.meta_lr)
    bar = ProgressBar(total=cfg.meta_steps * 2 * cfg.steps, enabled=progress, label="tune ")
    history: List[Dict[str, Any]] = []
    best: Optional[Tuple[float, Schedule]] = None
    window = sampler.open_window()
    t0 = time.monotonic()
    for k in range(cfg.meta_steps):
        if should_stop is not None and should_stop():
            raise StopRequested()
        base = k * 2 * cfg.steps
        note = f"meta-step {k + 1}/{cfg.meta_steps}"

        def on_step(phase: str, t: int, base: int = base, note: str = note) -> None:
            if should_stop is not None and should_stop():  # a cancel: seen within one step
                raise StopRequested()
            bar.update(base + (t + 1 if phase == "forward" else 2 * cfg.steps - t), note)

        entry: Dict[str, Any] = {"meta_step": k, "lr": np.exp(sched.log_lr).tolist(),
                                 "momentum": [sched.effective_decay(b) for b in range(sched.blocks)]}
        try:
            hg = hypergradient(net, w_init, sched, batches, masks, val, on_step=on_step)
            ok = math.isfinite(hg.val_loss)
        except ReversibleOverflow as e:
            hg, ok = None, False
            entry["diverged"] = str(e)
        if ok:
            grad = np.concatenate([hg.d_log_lr.ravel(),
                                   hg.d_decay * sched.decay * (1 - sched.decay)
                                   if cfg.tune_momentum else np.zeros(sched.blocks)])
            theta = adam.step(theta, grad)
            entry.update(val_loss=hg.val_loss, buffer_bits=hg.buffer_bits,
                         restored_exactly=hg.restored_exactly,
                         grad_norm=float(np.linalg.norm(grad)))
            if best is None or hg.val_loss < best[0]:
                best = (hg.val_loss, Schedule(sched.log_lr.copy(), sched.decay.copy()))
        else:
            theta[:n_lr] -= math.log(4.0)
        theta[:n_lr] = np.clip(theta[:n_lr], *np.log(LR_RANGE))
        theta[n_lr:] = np.clip(theta[n_lr:], *_logit(np.array(DECAY_RANGE)))
        sched = Schedule(theta[:n_lr].reshape(sched.log_lr.shape), 1 / (1 + np.exp(-theta[n_lr:])))
        entry.update(seconds=round(time.monotonic() - t0, 3), joules=round(window.energy_now_j(), 6))
        history.append(entry)
        if log is not None:
            log(f"{note}: validation loss {entry.get('val_loss', 'diverged')}")
    bar.close()
    spent = window.close()
    if best is None:
        raise ConfigError("lr", cfg.lr, f"a start from which the {cfg.steps}-step unroll does not "
                                        f"diverge ({cfg.meta_steps} meta-steps all diverged)")
    schedule = dict(best[1].to_json(net.layer_names, cfg.steps), format=FORMAT, version=1,
                    task=spec.name, model=arch, seed=cfg.seed, val_loss=best[0],
                    sparsity=cfg.sparsity)
    meter = sampler.meter
    tuning = {
        "method": cfg.method, "optimizer": cfg.optimizer, "steps": cfg.steps,
        "meta_steps": cfg.meta_steps, "blocks": cfg.blocks, "meta_lr": cfg.meta_lr,
        "start": {"lr": cfg.lr, "momentum": cfg.momentum},
        "validation": {"examples": int(va.size), "train_examples": int(tr.size),
                       "from": "target training split"},
        "joules": round(spent.energy_j, 6), "seconds": round(spent.seconds, 6),
        "energy_source": meter.source, "estimated": bool(meter.estimated),
        "energy_profile": meter.profile, "history": history,
        "buffer_bits": max((h.get("buffer_bits", 0) for h in history), default=0),
        "n_params": net.params.size,
    }
    return {"schedule": schedule, "tuning": tuning}


def _run(cfg, sampler, on_point, should_stop, log, progress) -> Dict[str, Any]:
    try:
        tuned = tune_schedule(cfg, sampler, should_stop, log, progress)
    except StopRequested:
        return {"task": cfg.task, "optimizer": NAME, "status": "cancelled",
                "stop_reason": "cancelled", "points": [], "model_path": None}
    if cfg.out_dir is not None:
        save_schedule(Path(cfg.out_dir), tuned["schedule"])
    acfg = AdaptConfig(task=cfg.task, data_dir=cfg.data_dir, model=tuned["schedule"]["model"],
                       optimizer=NAME, hyperparameters={"schedule": tuned["schedule"]},
                       steps=cfg.steps, eval_every=cfg.eval_every, seed=cfg.seed,
                       sparsity=cfg.sparsity or "dense", power_source=cfg.power_source,
                       sysfs_root=cfg.sysfs_root, idle_seconds=cfg.idle_seconds,
                       threads=cfg.threads, output_model=cfg.output_model)
    report = run_adaptation(acfg, sampler=sampler, on_point=on_point, should_stop=should_stop,
                            log=log, progress=progress)
    report.update(tuning=tuned["tuning"], schedule=tuned["schedule"],
                  tuning_joules=tuned["tuning"]["joules"])
    if cfg.out_dir is not None:
        (Path(cfg.out_dir) / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def save_schedule(out_dir: Path, schedule: Dict[str, Any]) -> List[str]:
    """Write ``schedule.json`` and, when matplotlib is installed, ``schedule.png``; the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "schedule.json"
    path.write_text(json.dumps(schedule, indent=1) + "\n")
    written = [str(path)]
    png = plot_schedule(schedule, out_dir / "schedule.png")
    if png:
        written.append(png)
    return written


def plot_schedule(schedule: Dict[str, Any], path: Path) -> Optional[str]:
    """Learning rate per layer and momentum over the steps (the paper's schedule figure)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    steps, blocks = schedule["steps"], schedule["blocks"]
    edges = [b * steps / blocks for b in range(blocks + 1)]
    fig, (ax, axm) = plt.subplots(2, 1, figsize=(6.4, 5.2), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1]})
    for name, lrs in zip(schedule["layers"], schedule["lr"]):
        ax.stairs(lrs, edges, baseline=None, label=name, linewidth=2)
    ax.set_yscale("log")
    ax.set_ylabel("learning rate")
    ax.set_title(f"hypergradient-tuned schedule: {schedule.get('task')} / {schedule.get('model')}")
    ax.legend(fontsize=8)
    axm.stairs(schedule["momentum"], edges, baseline=None, color="k", linewidth=2)
    axm.set_ylim(DECAY_RANGE[0] - 0.02, 1.0)
    axm.set_ylabel("momentum")
    axm.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
