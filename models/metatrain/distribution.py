"""The meta-training task distribution: MNIST-train image tasks and procedural tabular tasks.

``task_pool(spec, data_dir, cache_dir)`` turns a JSON-able spec into a list of
:class:`MetaTask` (a pretrained source model plus target train / held-out data and an
unroll length); ``split_pool`` holds whole tasks out for meta-validation.  The two
families are described in ``task_images`` and ``task_tabular``; docs/metatrain.md
("The meta-training distribution") has the default pool as a table.

Everything is deterministic from the spec.  Each source model is pretrained once
with seeded Adam and cached in ``cache_dir`` under a key hashing everything it
depends on (its data recipe, architecture, pretraining budget, this module's
version); a spec change that alters a source gives it a new key, while a change of
target-only settings (horizon, shots, ...) reuses the cached sources.  Writes are
atomic (``models.checkpoint.save_model``).

Fashion-MNIST, CIFAR-10, thyroid, gas-sensor and HAR data are evaluation-only and
are never read here; of MNIST only the training files are opened.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from threadpoolctl import threadpool_limits

from kernels.optimizers import make_optimizer
from models.checkpoint import load_model, read_header, save_model
from models.metatrain import task_images, task_tabular
from models.metatrain.draws import stream
from models.nets import ModelError, Network, build_network
from models.train import Trainer, train_steps

DISTRIBUTION_VERSION = 1
FAMILIES = ("mnist-image", "tabular")

DEFAULT_SPEC: Dict[str, Any] = {
    "seed": 0,
    "mnist": {
        "tasks": 12,
        "archs": ["cnn-a", "cnn-b", "cnn-c", "mlp", "mlp-deep"],
        "kinds": list(task_images.KINDS),
        "classes": [2, 5],               # k: source and target classes per task
        "shots": [10, 20, 30, 100, 300, 1000],   # target training images per class
        "cnn_horizons": [100, 200, 300],
        "mlp_horizons": [100, 300, 1000],
        "source_per_class": 1000,        # source training images per class
        "val_per_class": 100,            # held-out target images per class
        "batch_size": 64,
        "source_steps": 300,             # Adam steps of source pretraining, batch 64
    },
    "tabular": {
        "tasks": 10,
        "archs": ["mlp", "mlp-deep"],
        "dims": [4, 64],
        "classes": [2, 5],
        "max_imbalance": 20.0,           # largest / smallest class prior
        "max_label_noise": 0.15,
        "scale_decades": 4.0,            # spread of the per-feature scales (log10)
        "train_size": [24, 3000],        # target training examples (before oversampling)
        "val_size": 400,
        "source_size": 2000,
        "horizons": [100, 300, 1000],
        "batch_sizes": [16, 32, 64],
        "source_steps": 1500,
    },
    "pretrain_lr": 1e-3,
}

Progress = Callable[[int, int, str], None]


class SpecError(ValueError):
    """A task-distribution spec is invalid; the message names the field and the value."""

    def __init__(self, field_name: str, value: Any, expected: str):
        self.field, self.value, self.expected = field_name, value, expected
        super().__init__(f"task spec {field_name}: got {value!r}; expected {expected}")


@dataclass(frozen=True, eq=False)
class MetaTask:
    """One meta-training task: a pretrained source model and the target data it adapts to.

    ``x_*`` are float32 (images NHWC, standardised with the source training images'
    statistics; tabular features standardised with the source's statistics only when
    ``details["source"]["standardize"]``, raw otherwise), ``y_*`` int64 in
    ``0..num_classes-1``.  ``x_val``/``y_val`` are held-out target examples of the same
    distribution, never trained on (for the meta-loss).  Arrays are read-only.
    ``details``: the task's drawn settings, its source accuracy and cache key.
    """

    name: str
    family: str
    arch: str
    input_shape: tuple
    num_classes: int
    source_params: np.ndarray
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    horizon: int
    batch_size: int
    details: Mapping[str, Any] = field(default_factory=dict)

    def network(self) -> Network:
        """A fresh network with the source parameters loaded."""
        net = Network(self.arch, self.input_shape, self.num_classes)
        net.params.data[...] = self.source_params
        return net


def resolve_spec(spec: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """``spec`` over :data:`DEFAULT_SPEC` (sections merged key by key), checked.

    Unknown keys and bad values raise :class:`SpecError` naming them.
    """
    out = copy.deepcopy(DEFAULT_SPEC)
    for k, v in dict(spec or {}).items():
        if k.startswith("_"):
            continue
        if k not in out:
            raise SpecError(k, v, f"one of {', '.join(sorted(DEFAULT_SPEC))}")
        if isinstance(out[k], dict):
            if not isinstance(v, Mapping):
                raise SpecError(k, v, "an object")
            for kk, vv in v.items():
                if kk not in out[k]:
                    raise SpecError(f"{k}.{kk}", vv, f"one of {', '.join(sorted(out[k]))}")
                out[k][kk] = copy.deepcopy(vv)
        else:
            out[k] = v
    _check(out)
    return out


def _int(spec: Mapping[str, Any], path: str, lo: int, hi: Optional[int] = None) -> None:
    sec, _, key = path.rpartition(".")
    v = spec[sec][key] if sec else spec[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
        raise SpecError(path, v, f"an integer in [{lo}, {hi if hi is not None else 'inf'}]")


def _ints(spec: Mapping[str, Any], path: str, lo: int, hi: int, pair: bool = False) -> None:
    sec, _, key = path.rpartition(".")
    v = spec[sec][key]
    ok = (isinstance(v, list) and len(v) > 0 and (not pair or (len(v) == 2 and v[0] <= v[1]))
          and all(isinstance(e, int) and not isinstance(e, bool) and lo <= e <= hi for e in v))
    if not ok:
        what = "[low, high] with low <= high" if pair else "a non-empty list"
        raise SpecError(path, v, f"{what} of integers in [{lo}, {hi}]")


def _choices(spec: Mapping[str, Any], path: str, allowed: Sequence[str]) -> None:
    sec, _, key = path.rpartition(".")
    v = spec[sec][key]
    if not (isinstance(v, list) and v and all(e in allowed for e in v)):
        raise SpecError(path, v, f"a non-empty list of {', '.join(allowed)}")


def _number(spec: Mapping[str, Any], path: str, lo: float, hi: float) -> None:
    sec, _, key = path.rpartition(".")
    v = spec[sec][key] if sec else spec[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
        raise SpecError(path, v, f"a number in [{lo}, {hi}]")


def _check(s: Mapping[str, Any]) -> None:
    _int(s, "seed", 0, 2 ** 31 - 1)
    _number(s, "pretrain_lr", 1e-6, 1.0)
    _int(s, "mnist.tasks", 0, 1000)
    _choices(s, "mnist.archs", ["cnn-a", "cnn-b", "cnn-c", "mlp", "mlp-deep"])
    _choices(s, "mnist.kinds", list(task_images.KINDS))
    _ints(s, "mnist.classes", 2, 5, pair=True)
    _ints(s, "mnist.shots", 1, 2000)
    _ints(s, "mnist.cnn_horizons", 1, 100000)
    _ints(s, "mnist.mlp_horizons", 1, 100000)
    _int(s, "mnist.source_per_class", 10, 2000)
    _int(s, "mnist.val_per_class", 5, 500)
    _int(s, "mnist.batch_size", 1, 4096)
    _int(s, "mnist.source_steps", 1, 1000000)
    if max(s["mnist"]["shots"]) + s["mnist"]["val_per_class"] > 2400:
        raise SpecError("mnist.shots", s["mnist"]["shots"],
                        "at most 2400 - val_per_class per class (the target half's smallest digit)")
    if s["mnist"]["source_per_class"] + task_images.SOURCE_TEST_PER_CLASS > 2400:
        raise SpecError("mnist.source_per_class", s["mnist"]["source_per_class"],
                        f"at most {2400 - task_images.SOURCE_TEST_PER_CLASS}")
    _int(s, "tabular.tasks", 0, 1000)
    _choices(s, "tabular.archs", ["mlp", "mlp-deep"])
    _ints(s, "tabular.dims", 1, 4096, pair=True)
    _ints(s, "tabular.classes", 2, 20, pair=True)
    _number(s, "tabular.max_imbalance", 1.0, 1000.0)
    _number(s, "tabular.max_label_noise", 0.0, 0.5)
    _number(s, "tabular.scale_decades", 0.0, 10.0)
    _ints(s, "tabular.train_size", 4, 1000000, pair=True)
    _int(s, "tabular.val_size", 10, 1000000)
    _int(s, "tabular.source_size", 10, 1000000)
    _ints(s, "tabular.horizons", 1, 100000)
    _ints(s, "tabular.batch_sizes", 1, 4096)
    _int(s, "tabular.source_steps", 1, 1000000)


def _key(recipe: Mapping[str, Any]) -> str:
    text = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _source_params(family: str, plan: Mapping[str, Any], source, input_shape, steps: int,
                   lr: float, cache_dir: Path, log: Callable[[str], None]
                   ) -> Tuple[np.ndarray, Dict[str, Any]]:
    """The source model's flat parameters (cached) and its record (key, accuracy, time)."""
    recipe = {"version": DISTRIBUTION_VERSION, "family": family, "arch": plan["arch"],
              "input_shape": list(input_shape), "num_classes": plan["num_classes"],
              "source": plan["source"], "pretrain": {"optimizer": "adam", "lr": lr,
                                                     "steps": steps, "batch_size": 64}}
    key = _key(recipe)
    path = Path(cache_dir) / f"{family}-{plan['arch']}-{key}.npz"
    if path.exists():
        try:
            header = read_header(path)
            if header.get("recipe") == recipe:
                net, _ = load_model(path)
                return net.params.data.copy(), dict({k: header[k] for k in _RECORD}, cached=True)
        except (ModelError, KeyError):
            pass  # unreadable or stale: make it again
    x, y, xt, yt = source
    seed = int(plan["source"]["data_seed"])
    net = build_network(plan["arch"], input_shape, plan["num_classes"], seed=seed)
    t0 = time.perf_counter()
    with threadpool_limits(limits=1):
        trainer = Trainer(net, make_optimizer("adam", lr=lr), seed=seed)
        train_steps(trainer, x, y, steps, 64, seed)
        acc, loss = net.evaluate(xt, yt)
    seconds = time.perf_counter() - t0
    record = {"key": key, "source_accuracy": float(acc), "source_loss": float(loss),
              "pretrain_seconds": round(seconds, 3)}
    log(f"pretrained {plan['name']} source ({steps} Adam steps) in {seconds:.1f} s: "
        f"source held-out accuracy {acc:.4f}")
    save_model(path, net, dict(record, recipe=recipe, role="meta-train source"))
    return net.params.data.copy(), dict(record, cached=False)


_RECORD = ("key", "source_accuracy", "source_loss", "pretrain_seconds")


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


def task_pool(spec: Optional[Mapping[str, Any]], data_dir: Path, cache_dir: Path,
              progress: Optional[Progress] = None,
              log: Optional[Callable[[str], None]] = None) -> List[MetaTask]:
    """The tasks of ``spec`` (see :data:`DEFAULT_SPEC`), image tasks first.

    ``data_dir`` holds ``mnist/train-*`` (only those files are read); ``cache_dir``
    keeps the pretrained source models.  ``progress(done, total, name)`` is called
    after each task; ``log(message)`` for each pretraining (default: silent).
    """
    s = resolve_spec(spec)
    log = log or (lambda msg: None)
    lr = float(s["pretrain_lr"])
    jobs: List[Tuple[str, Dict[str, Any]]] = []
    jobs += [("mnist-image", p) for p in task_images.plan_tasks(s["mnist"], s["seed"])]
    jobs += [("tabular", p) for p in task_tabular.plan_tasks(s["tabular"], s["seed"])]
    tasks = []
    for done, (family, plan) in enumerate(jobs, 1):
        if family == "mnist-image":
            source, target = task_images.build_task(plan, Path(data_dir))
            shape, steps, what = task_images.INPUT_SHAPE, s["mnist"]["source_steps"], task_images
        else:
            source, target = task_tabular.build_task(plan)
            shape = (plan["source"]["dims"],)
            steps, what = s["tabular"]["source_steps"], task_tabular
        params, record = _source_params(family, plan, source, shape, steps, lr,
                                        Path(cache_dir), log)
        details = dict(plan, description=what.describe(plan), **record,
                       n_train=int(len(target[1])), n_val=int(len(target[3])))
        tasks.append(MetaTask(
            name=plan["name"], family=family, arch=plan["arch"], input_shape=tuple(shape),
            num_classes=int(plan["num_classes"]), source_params=_readonly(params),
            x_train=_readonly(target[0]), y_train=_readonly(target[1]),
            x_val=_readonly(target[2]), y_val=_readonly(target[3]),
            horizon=int(plan["horizon"]), batch_size=int(plan["batch_size"]), details=details))
        if progress is not None:
            progress(done, len(jobs), plan["name"])
    return tasks


def split_pool(tasks: Sequence[MetaTask], n_validation: int, seed: int
               ) -> Tuple[List[MetaTask], List[MetaTask]]:
    """``(meta_train, meta_validation)``: ``n_validation`` whole tasks held out.

    The held-out tasks are drawn from each family in proportion to its share of the
    pool (at least one per family when ``n_validation`` allows), so both sides come
    from the same distribution; the order of each side follows ``tasks``.
    """
    n = len(tasks)
    if isinstance(n_validation, bool) or not isinstance(n_validation, int) \
            or not 0 <= n_validation < max(n, 1):
        raise SpecError("n_validation", n_validation, f"an integer in [0, {max(n - 1, 0)}]")
    rng = stream(seed, "split_pool")
    families = sorted({t.family for t in tasks})
    by_family = {f: [i for i, t in enumerate(tasks) if t.family == f] for f in families}
    quota = {f: int(np.floor(n_validation * len(by_family[f]) / n)) for f in families}
    if n_validation >= len(families):
        for f in families:
            quota[f] = max(quota[f], 1)
    while sum(quota.values()) < n_validation:  # largest families first
        f = max(families, key=lambda g: (len(by_family[g]) - quota[g], g))
        quota[f] += 1
    while sum(quota.values()) > n_validation:
        f = max(families, key=lambda g: (quota[g], g))
        quota[f] -= 1
    held = set()
    for f in families:
        idx = by_family[f]
        held.update(idx[j] for j in rng.permutation(len(idx))[:quota[f]])
    return ([t for i, t in enumerate(tasks) if i not in held],
            [t for i, t in enumerate(tasks) if i in held])
